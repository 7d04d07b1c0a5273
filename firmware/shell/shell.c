/* Console shell: reads lines from USART1's RX ring, splits them into words and dispatches by name. */
#include "shell.h"
#include "los_printf.h"
#include "memhil_timer.h"
#include "stm32_usart.h"

#define LINE_MAX 96U

static char s_line[LINE_MAX];
static UINT32 s_len;
static BOOL s_started;
static UINT64 s_last_rx_ms; /* uptime of the latest byte read */

static UINT32 cmd_uptime(INT32 argc, const CHAR *argv[]);
static UINT32 cmd_help(INT32 argc, const CHAR *argv[]);

static const struct shell_cmd s_cmds[] = {
    {"memused", OsShellCmdMemUsed, "memused              used nodes with their recorded LRs"},
    {"memstat", OsShellCmdMemStat, "memstat [module]     bytes used per module"},
    {"free", OsShellCmdFree, "free [-k|-m]         pool total/used/free"},
    {"memcheck", OsShellCmdMemCheck, "memcheck             pool integrity check"},
    {"uptime", cmd_uptime, "uptime               milliseconds since reset"},
    {"help", cmd_help, "help                 this list"},
};

static UINT32 cmd_uptime(INT32 argc, const CHAR *argv[])
{
    (void)argc;
    (void)argv;
    PRINTK("uptime %llu ms\n", (unsigned long long)g_memhil_uptime_ms);
    return LOS_OK;
}

static UINT32 cmd_help(INT32 argc, const CHAR *argv[])
{
    (void)argc;
    (void)argv;
    for (UINT32 i = 0; i < sizeof(s_cmds) / sizeof(s_cmds[0]); i++) {
        PRINTK("%s\n", s_cmds[i].help);
    }
    return LOS_OK;
}

static int str_eq(const char *a, const char *b)
{
    while (*a != '\0' && *a == *b) {
        a++;
        b++;
    }
    return *a == *b;
}

UINT32 shell_exec(char *line)
{
    const CHAR *argv[SHELL_MAX_ARGS + 1];
    INT32 argc = 0;
    char *p = line;
    while (*p != '\0' && argc <= SHELL_MAX_ARGS) {
        while (*p == ' ' || *p == '\t') {
            *p++ = '\0';
        }
        if (*p == '\0') {
            break;
        }
        argv[argc++] = p;
        while (*p != '\0' && *p != ' ' && *p != '\t') {
            p++;
        }
    }
    if (argc == 0) {
        return LOS_OK;
    }
    for (UINT32 i = 0; i < sizeof(s_cmds) / sizeof(s_cmds[0]); i++) {
        if (str_eq(argv[0], s_cmds[i].name)) {
            /* LiteOS passes the arguments after the command name. */
            return s_cmds[i].fn(argc - 1, &argv[1]);
        }
    }
    PRINTK("unknown command: %s\n", argv[0]);
    return OS_ERROR;
}

void shell_start(void)
{
    s_started = TRUE;
    PRINTK(SHELL_PROMPT);
}

BOOL shell_typing(UINT64 now_ms)
{
    return s_len > 0U && now_ms - s_last_rx_ms < SHELL_TYPING_MS;
}

void shell_poll(void)
{
    int c;
    if (!s_started) {
        return;
    }
    while ((c = console_getc()) >= 0) {
        s_last_rx_ms = g_memhil_uptime_ms;
        if (c == '\r' || c == '\n') {
            if (c == '\n' && s_len == 0U) {
                continue; /* "\r\n": the line was already run on '\r' */
            }
            PRINTK("\n");
            s_line[s_len] = '\0';
            UINT32 saved = g_memhil_cur_task;
            g_memhil_cur_task = 4U; /* the shell's context id (module SHELL) */
            (void)shell_exec(s_line);
            g_memhil_cur_task = saved;
            s_len = 0;
            PRINTK(SHELL_PROMPT);
        } else if (c == 0x08 || c == 0x7F) {
            if (s_len > 0U) {
                s_len--;
            }
        } else if (s_len + 1U < LINE_MAX && c >= 0x20) {
            s_line[s_len++] = (char)c;
        }
    }
}
