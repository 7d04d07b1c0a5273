#include "memhil_boot.h"
#include "memhil_timer.h"
#include "shell.h"

int main(void)
{
    memhil_boot("module_stats");
    shell_start();
    memhil_os_run();
}
