@ Two functions with literal pools between them, for Image.data_ranges and thumb.direct_branches: the pool after
@ caller holds a word that decodes as a BL if taken for code.
    .syntax unified
    .thumb
    .text
    .global callee, caller, after

    .type callee, %function
    .thumb_func
callee:
    bx lr
    .size callee, .-callee

    .type caller, %function
    .thumb_func
caller:
    push {r4, lr}
    bl callee
    ldr r4, =0x12345678
    ldr r0, [r4]
    pop {r4, lr}
    b.w callee
    .ltorg
    .word 0xF800F000
    .size caller, .-caller

    .type after, %function
    .thumb_func
after:
    bl callee
    bx lr
    .size after, .-after

    .global Reset_Handler
    .type Reset_Handler, %function
    .thumb_func
Reset_Handler:
    bl after
    b Reset_Handler
    .size Reset_Handler, .-Reset_Handler
