*** Settings ***
Documentation     Every bad input LiteOS 5.0.0 rejects, as the firmware's allocator answers it, leaves the heap intact;
...               bad keyword arguments fail with messages that say what is accepted. The cases run in the order the
...               firmware prints them.
Resource          memhil.resource
Suite Setup       Start Firmware    bad_input    debug    capture=hooks
Suite Teardown    Stop Emulator


*** Test Cases ***
Bad Sizes And Boundaries Return NULL
    Wait For Line    bad_input alloc_size_0: .* = NULL
    Wait For Line    bad_input alloc_used_flag: .* = NULL
    Wait For Line    bad_input align_boundary_24: .* = NULL

Invalid Module IDs Are Refused With The LiteOS Message
    Wait For Line    error module ID input!
    Wait For Line    bad_input malloc_module_33: .* = NULL
    Wait For Line    bad_input musedget_module_33: .* = 0xffffffff
    Wait For Line    bad_input mfree_module_33: .* = LOS_NOK

Foreign Pointers Are Refused
    Wait For Line    bad_input free_foreign: .* = LOS_NOK
    Wait For Line    bad_input free_interior: .* = LOS_NOK
    Wait For Line    bad_input realloc_foreign: .* = NULL

Free In The Wrong Module Charges The Owner
    Wait For Line    node\\[0x[0-9a-f]+\\] alloced in module 1, but free in module 2
    Wait For Line    bad_input mfree_wrong_module: .* = LOS_OK
    Wait For Line    bad_input mfree_wrong_module_charged: LOS_MemMusedGet\\(1\\) = 0 LOS_MemMusedGet\\(2\\) = 0

Double Free Is Refused
    Wait For Line    bad_input double_free: .* = LOS_NOK
    Wait For Line    bad_input realloc_freed: .* = NULL

Heap Stays Intact
    Wait For Line    bad_input done integrity ok
    Heap Should Be Intact
    ${out} =    Execute Shell Command    memcheck
    Should Contain    ${out}    system memcheck over, all passed!
    Module Usage Should Match Firmware

Bad Keyword Arguments Say What Is Accepted
    Run Keyword And Expect Error    *unknown time unit 'parsecs'*    Run For    3 parsecs
    Run Keyword And Expect Error    *negative duration*    Run For    -1s
    Run Keyword And Expect Error    *out of range*    Get Module Used    40
