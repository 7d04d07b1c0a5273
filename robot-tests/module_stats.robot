*** Settings ***
Documentation     LiteOS's multi-module memory statistics: LOS_MemMalloc charges whole nodes to a module
...               (a 16-byte request costs 32 bytes with the release build's 16-byte header), the firmware's
...               own figures equal the host ledger built from hooked allocator calls, and memory taken with the
...               plain LOS_MemAlloc is found as the reason module 0's figures differ.
Resource          memhil.resource
Test Teardown     Stop Emulator


*** Test Cases ***
LiteOS Example Charges Whole Nodes To Each Module
    Start Firmware    module_stats    release
    Wait For Line    module 0 malloc successed
    Wait For Line    module 0 mem used size 32
    Wait For Line    module 1 malloc successed
    Wait For Line    module 1 mem used size 32

More Modules Match Between Firmware And Host
    [Documentation]    Sizes follow the bestfit rules: ALIGN(size + header, 4); aligned blocks cost size + boundary - 4.
    Start Firmware    module_stats    release
    Wait For Line    module 7 mem used size \\d+
    Run For    50ms
    Get Module Used    FS    ==    348
    Get Module Used    5    ==    108
    Get Module Used    7    ==    216
    Get Firmware Module Used    FS    ==    348
    Get Module Used    NET    ==    0
    Module Usage Should Match Firmware

Debug Build Header Carries Three Link Registers
    [Documentation]    With LOSCFG_MEM_LEAKCHECK the node header grows from 16 to 28 bytes (3 LRs).
    Start Firmware    module_stats    debug
    Wait For Line    module 1 mem used size 44
    Wait For Line    module 7 mem used size \\d+
    Run For    50ms
    Get Module Used    FS    ==    384
    Module Usage Should Match Firmware

Plain LOS_MemAlloc Explains A Module 0 Difference
    [Documentation]    LiteOS's precaution: memory taken without the module API is not in the firmware's figures.
    Start Firmware    module_stats    release
    Wait For Line    module 7 mem used size \\d+
    Run For    50ms
    ${host} =    Get Module Used    SYS
    ${firmware} =    Get Firmware Module Used    SYS
    Should Be True    ${host} > ${firmware}
    Module Usage Should Match Firmware    SYS

Host Memused Listing Equals The Firmware Shell
    Start Firmware    module_stats    debug    capture=snapshot
    Wait For Line    module 7 mem used size \\d+
    Run For    50ms
    ${shell} =    Execute Shell Command    memused
    ${host} =    Get Memused Listing
    Should Be Equal    ${host.strip()}    ${shell.strip()}

Unknown Modules Are Refused With What Is Accepted
    Start Firmware    module_stats    release    capture=none
    Run Keyword And Expect Error    *module id 33 is out of range*0 to 32*    Get Firmware Module Used    33
    Run Keyword And Expect Error    *unknown module 'WIFI'*    Get Firmware Module Used    WIFI
