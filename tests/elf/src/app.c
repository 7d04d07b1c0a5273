/* Test program for memhil.elf: node header like LiteOS, nested calls, an inlined
 * function, and a call chain taken from an interrupt handler (PendSV). */
#include <stdint.h>

typedef struct LOS_DL_LIST {
    struct LOS_DL_LIST *pstPrev;
    struct LOS_DL_LIST *pstNext;
} LOS_DL_LIST;

typedef struct {
    union {
        LOS_DL_LIST freeNodeInfo;
        struct {
            uint32_t magic;
            uint32_t taskId : 16;
            uint32_t moduleId : 16;
        };
    };
    void *preNode;
    uint32_t linkReg[3];
    uint32_t sizeAndFlag;
} LosMemCtlNode;

struct point { int16_t x, y; };

typedef struct {
    uint8_t kind : 3;
    uint8_t level : 5;
    uint16_t code;
    struct point pos;
    char name[6];
    uint32_t grid[2][3];
    uint32_t wide : 20;
    uint32_t narrow : 12;
} Mixed;

LosMemCtlNode g_node = {
    .magic = 0xABCD1234u, .taskId = 0x0012u, .moduleId = 0x0034u,
    .preNode = (void *)0x20000100, .linkReg = {0x08000101u, 0x08000203u, 0x08000305u},
    .sizeAndFlag = 0x80000040u,
};
Mixed g_mixed = { .kind = 5, .level = 17, .code = 0xBEEF, .pos = {-3, 7}, .name = "abc", .wide = 0xABCDE, .narrow = 0x123 };
volatile uint32_t g_sink;
volatile uint32_t g_leaf_hits;

static inline __attribute__((always_inline)) uint32_t square(uint32_t x)
{
    return x * x + g_sink;
}

__attribute__((noinline)) uint32_t leaf(uint32_t x)
{
    g_leaf_hits++;
    g_sink = square(x) + 1u;
    return g_sink;
}

__attribute__((noinline)) uint32_t middle(uint32_t x)
{
    uint32_t r = leaf(x + 1u);
    g_sink = r;
    return r + 2u;
}

__attribute__((noinline)) uint32_t outer(uint32_t x)
{
    uint32_t r = middle(x * 3u);
    g_sink += r;
    return r;
}

#define SCB_ICSR (*(volatile uint32_t *)0xE000ED04u)

void PendSV_Handler(void)
{
    g_sink = middle(7u);
}

__attribute__((noinline)) void trigger(void)
{
    SCB_ICSR = 1u << 28; /* PENDSVSET */
    __asm volatile("dsb\n\tisb" ::: "memory");
    g_sink++;
}

int main(void)
{
    outer(1u);
    trigger();
    for (;;) {
        outer(g_sink);
    }
}
