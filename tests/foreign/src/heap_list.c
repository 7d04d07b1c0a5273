/* A linked list on newlib malloc, and the ways a block gets lost, with its truth (tests/foreign/truth.py):
 *
 *   still reachable  5 list nodes (16 B each) held only through g_list and each other;
 *                    1 block (24 B) held in main's live stack frame
 *   possibly lost    1 block (32 B) held only by an interior pointer (g_interior = block + 8)
 *   definitely lost  the head (16 B) of a dropped 3-node list, whose 2 other nodes are indirectly lost;
 *                    1 block (40 B) whose pointer is left in a returned function's frame (below SP);
 *                    1 block (48 B) whose pointer survives only inside a freed block
 *
 * Built for the STM32F405 (startup.c, link.ld) and for the host, where valgrind memcheck checks the same truth
 * (VALGRIND_DO_LEAK_CHECK at the point the firmware parks). */
#include <stdint.h>
#include <stdlib.h>

#ifdef HOST
#include <valgrind/memcheck.h>
#define APP_STATE
#else
#define APP_STATE __attribute__((section(".app_state")))
void fw_puts(const char *s);
__attribute__((noreturn)) void park(void *p);
#endif

#define NODE_BYTES 16

struct node {
    struct node *next;
    uint32_t value;
};

APP_STATE struct node *g_list;
APP_STATE uint8_t *g_interior;

__attribute__((noinline)) static struct node *push(struct node *head, uint32_t value)
{
    struct node *n = malloc(NODE_BYTES);
    n->next = head;
    n->value = value;
    return n;
}

__attribute__((noinline)) static void drop_a_list(void)
{
    struct node *head = NULL;
    for (uint32_t i = 0; i < 3; i++) head = push(head, 100 + i);
    __asm volatile("" ::"r"(head) : "memory");
}

/* The pointer is stored at the bottom of a 256-byte frame: after the return it lies well below SP (beyond the
 * 128-byte red zone memcheck scans under SP on amd64). */
__attribute__((noinline)) static void dead_frame(void)
{
    volatile uintptr_t slots[64];
    slots[0] = (uintptr_t)malloc(40);
    for (int i = 1; i < 64; i++) slots[i] = 0;
}

__attribute__((noinline)) static void freed_holder(void)
{
    void **tmp = malloc(32);
    tmp[2] = malloc(48);
    __asm volatile("" ::"r"(tmp) : "memory"); /* keep the store: the compiler may drop stores into freed memory */
    free(tmp);
}

int main(void)
{
    for (uint32_t i = 0; i < 5; i++) g_list = push(g_list, i);
    uint8_t *b = malloc(32);
    g_interior = b + 8;
    b = NULL;
    volatile uintptr_t live_local = (uintptr_t)malloc(24);
    drop_a_list();
    freed_holder(); /* after every other allocation but dead_frame's 40 bytes: nothing reuses the freed chunk */
    dead_frame();
#ifdef HOST
    VALGRIND_DO_LEAK_CHECK;
    return live_local == 0;
#else
    fw_puts("READY heap_list\r\n");
    park(NULL);
#endif
}
