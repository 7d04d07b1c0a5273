*** Settings ***
Documentation     The thinnest slice: every scenario boots on the engine and prints its banner,
...               and its shell answers; timeouts are virtual time.
Resource          memhil.resource
Test Teardown     Stop Emulator
Test Template     Firmware Boots


*** Test Cases ***              APP             CONFIG
module_stats debug              module_stats    debug
leak_demo release               leak_demo       release


*** Keywords ***
Firmware Boots
    [Arguments]    ${app}    ${config}
    Start Firmware    ${app}    ${config}    capture=none
    ${out} =    Execute Shell Command    uptime
    Should Match Regexp    ${out}    uptime \\d+ ms
