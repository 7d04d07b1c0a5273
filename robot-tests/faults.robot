*** Settings ***
Documentation     A firmware that faults fails its test at once, with the fault, the faulting line and the call
...               stack in the message, and its results are still written.
Resource          memhil.resource
Library           OperatingSystem
Test Teardown     Stop Emulator


*** Test Cases ***
An Assert That Traps Fails The Run With Its Line And Stack
    Start Firmware    hardfault    debug    capture=none
    ${err} =    Run Keyword And Expect Error    *    Run For    10s
    Should Contain    ${err}    the firmware took a HardFault
    Should Contain    ${err}    UNDEFINSTR
    Should Contain    ${err}    HFSR FORCED
    Should Match Regexp    ${err}    cal_store \\(apps/hardfault/main.c:\\d+\\) <exception frame>
    Should Match Regexp    ${err}    sensor_poll \\(apps/hardfault/main.c:\\d+\\)
    ${t} =    Get Virtual Time
    Should Be True    0.33 <= ${t} < 0.34    the fault came at the fourth poll (332 ms), not at the 10 s deadline: ${t}
    Run Keyword And Expect Error    *HardFault*    Run For    1s
    Stop Emulator
    ${summary} =    Evaluate    [p for p in pathlib.Path($MEMHIL_OUT).rglob('summary.json') if 'Its_Line_And_Stack' in str(p)]    modules=pathlib
    ${data} =    Evaluate    json.loads($summary[0].read_text())    modules=json
    Should Be Equal    ${data}[fault][kind]    HardFault
    Should Contain    ${data}[fault][cfsr]    UNDEFINSTR
