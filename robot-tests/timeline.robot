*** Settings ***
Documentation     The memory timeline's log mode: every allocator event of a long run goes to rotating binary log files
...               (at most N kept, the oldest deleted), each file parses on its own, the files parse in parallel,
...               the timeline gives the local maximum per 100 ms of virtual time, and the report at a time equals a
...               snapshot taken at that time.
Resource          memhil.resource
Suite Setup       Start Soak With A Small Rotating Log
Suite Teardown    Stop Emulator


*** Test Cases ***
Logs Rotate And The Oldest Are Deleted
    ${files} =    Get Timeline Files
    Length Should Be    ${files}    4
    Should Match Regexp    ${files}[0]    memlog\\d{8}_[0-9A-F]+-\\d+\\.bin$
    Should Not Match Regexp    ${files}[0]    -0\\.bin$    the first file was rotated away

Files Parse In Parallel With The Same Result
    ${one} =    Get All Time Size    workers=1
    ${two} =    Get All Time Size    workers=2
    Should Be Equal    ${one}    ${two}
    ${n} =    Get Length    ${one}
    Should Be True    ${n} > 100

Local Maxima Per Module
    ${net} =    Get All Time Size    NET
    ${peak} =    Evaluate    max(b for t, b in $net)
    Should Be True    0 < ${peak} <= 24576    NET holds 2 s of its 3-10 blocks of 16-512 B per 250 ms
    ${total_peak} =    Get Timeline Peak
    Should Be True    ${total_peak} >= ${peak}

Report At A Time Equals A Snapshot Taken Then
    [Documentation]    A 1 ms interval at an instant between the firmware's 250 ms ticks holds no events, so its
    ...    local maximum is the state at that instant.
    Run For    50ms
    Take Heap Snapshot    now
    ${t} =    Get Virtual Time
    ${from_log} =    Get Memory Report At    ${t}s    interval=1ms
    ${from_snapshot} =    Get Snapshot Site Report    now
    Should Be Equal    ${from_log.as_dict()}[mem_report]    ${from_snapshot.as_dict()}[mem_report]
    Should Be Equal As Integers    ${from_log.total_size}    ${from_snapshot.total_size}

Bad Timeline Arguments Say What Is Accepted
    Run Keyword And Expect Error    *shorter than 1 ms*    Get All Time Size    interval=10us
    Run Keyword And Expect Error    *workers must be at least 1*    Get All Time Size    workers=0
    Run Keyword And Expect Error    *max_files must be at least 1*    Start Timeline Log    max_files=0


*** Keywords ***
Start Soak With A Small Rotating Log
    Start Firmware    soak    debug    capture=trace
    Start Timeline Log    max_file_size=32KiB    max_files=4
    Run For    2h
