*** Settings ***
Documentation     LiteOS's leak check: ``leak_demo``'s APP module leaks a 64-byte response buffer on a rare
...               path; memhil finds exactly that leak between two snapshots, and its call stack names the leaking
...               function and the line of the allocation, whether the stack comes from the host's unwinder
...               (hooks) or from the link registers the firmware records in the node header (trace).
Resource          memhil.resource
Library           OperatingSystem
Test Teardown     Stop Emulator


*** Variables ***
${SOURCE}         ${CURDIR}/../firmware/apps/leak_demo/app.c


*** Test Cases ***
Leak Is Found With The Host-Unwound Call Stack
    Leak Is Found    hooks
    Leak Stack Should Contain    app_parse_request
    Leak Stack Should Contain    app_handle_request

Leak Is Found With The Firmware-Recorded Link Registers
    Leak Is Found    trace

Leak Shows In The Site Report
    ${LEAK_LINE} =    Leak Line
    Start Firmware    leak_demo    debug    capture=trace
    Run For    10s
    ${report} =    Get Heap Report
    Should Contain    ${report}    app.c
    Should Match Regexp    ${report}    line:${LEAK_LINE}\\s+size:\\d+

Suppressed Leak Is Not Reported
    Start Firmware    leak_demo    debug    capture=trace
    Run For    1s
    Take Heap Snapshot    before
    Run For    5s
    Take Heap Snapshot    after
    ${supp} =    Set Variable    ${OUTPUT DIR}/leak_demo.supp
    Create Suppression File    ${supp}
    Get Leak Count    before    after    ==    0    suppressions=${supp}


*** Keywords ***
Leak Is Found
    [Arguments]    ${capture}
    ${line} =    Leak Line
    Set Test Variable    ${LEAK_LINE}    ${line}
    Start Firmware    leak_demo    debug    capture=${capture}
    Run For    1s
    Take Heap Snapshot    before
    Run For    10s
    Take Heap Snapshot    after
    Get Leak Count    before    after    ==    1
    Run Keyword And Expect Error    *1 leak site(s)*app_build_response*    Should Have No Leaks    before    after
    Leak Stack Should Contain    app_build_response
    Leak Stack Should Contain    app.c:${line}

Leak Line
    [Documentation]    The line of the allocation marked ``/* LEAK-SITE */`` in the source.
    ${line} =    Evaluate    next(n for n, text in enumerate(open(r'''${SOURCE}'''), 1) if 'LEAK-SITE' in text)
    RETURN    ${line}

Create Suppression File
    [Arguments]    ${path}
    ${text} =    Catenate    SEPARATOR=\n    {    known-response-cache    memhil:Leak    fun:app_build_response    }
    Create File    ${path}    ${text}\n
