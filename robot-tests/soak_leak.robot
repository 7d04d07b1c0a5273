*** Settings ***
Documentation     A leak that needs six hours of uptime, reproduced in about a minute: the ``soak`` firmware runs
...               24 h of virtual time with acceleration and trace capture. NET (every 250 ms) and FS (every second)
...               allocate and free correctly; APP starts leaking one 48-byte block every 10 minutes once uptime
...               passes 6 h. memhil finds that one leak, dates its start near 6 h, measures six blocks an hour, and
...               draws the day as a picture.
Resource          memhil.resource
Suite Setup       Start Firmware    soak    debug    capture=trace
Suite Teardown    Stop Emulator


*** Test Cases ***
APP Leak Starts Near Six Hours And Grows Six Blocks An Hour
    Start Timeline Log
    Run For    5h 50min
    Take Heap Snapshot    before_leak
    Run For    18h 10min
    Take Heap Snapshot    day_end
    ${t} =    Get Virtual Time
    Should Be True    86399 <= ${t} <= 86401    24 h of virtual time ran (${t} s)
    Get Leak Count    before_leak    day_end    ==    1
    ${sites} =    Get Leak Sites    before_leak    day_end
    ${leak} =    Set Variable    ${sites}[0]
    Should Be Equal    ${leak}[function]    app_remember_session
    Should Be Equal    ${leak}[module]    APP
    Should Be True    6 * 3600 <= ${leak}[first_s] <= 6 * 3600 + 600    first leaked block at ${leak}[first_s] s
    Should Be True    5.9 <= ${leak}[blocks_per_hour] <= 6.1    rate ${leak}[blocks_per_hour] blocks/h
    Should Be Equal As Integers    ${leak}[bytes]    ${{ 48 * ${leak}[blocks] }}
    Leak Stack Should Contain    app_remember_session
    Save Timeline Plot    ${OUTPUT DIR}/soak-timeline.png    ${sites}

NET And FS Stay Clean
    Get Module Used    NET    <=    24 KiB
    Get Module Used    FS    ==    0
    ${net} =    Get All Time Size    NET
    ${first_hour} =    Evaluate    max(b for t, b in $net if t < 3600000)
    ${last_hour} =    Evaluate    max(b for t, b in $net if t >= 23 * 3600000)
    Should Be True    ${last_hour} <= ${first_hour} * 1.25    NET peak does not grow (${first_hour} -> ${last_hour})
    Heap Should Be Intact
