/**
 * @file board.c
 * @brief QEMU mps2-an386: console on UART0 (CMSDK APB UART), exit via semihosting.
 */
#include "board.h"

#include "cortex_m.h"
#include "semihost.h"

/** CMSDK APB UART registers (ARM CMSDK_CM4.h names). */
typedef struct {
    volatile uint32_t DATA;      /**< 0x00 RX/TX data, low 8 bits */
    volatile uint32_t STATE;     /**< 0x04 buffer status */
    volatile uint32_t CTRL;      /**< 0x08 enables */
    volatile uint32_t INTSTATUS; /**< 0x0C interrupt status / clear */
    volatile uint32_t BAUDDIV;   /**< 0x10 baud divider, >= 16 */
} CMSDK_UART_TypeDef;

#define CMSDK_UART0_BASE (0x40004000UL)
#define CMSDK_UART0      ((CMSDK_UART_TypeDef *)CMSDK_UART0_BASE)

#define CMSDK_UART_STATE_TXBF_Msk (1UL << 0) /**< TX buffer full */
#define CMSDK_UART_STATE_RXBF_Msk (1UL << 1) /**< RX buffer full (a byte waits) */
#define CMSDK_UART_CTRL_TXEN_Msk  (1UL << 0)
#define CMSDK_UART_CTRL_RXEN_Msk  (1UL << 1)

/* QEMU ignores the baud rate, but rejects BAUDDIV < 16; 25 MHz / 217 = 115200 baud
 * keeps the value right for the FPGA board too. */
#define CONSOLE_BAUD     115200UL
#define CONSOLE_BAUDDIV  (BOARD_CORE_CLOCK_HZ / CONSOLE_BAUD)

void board_init(void)
{
    CMSDK_UART0->BAUDDIV = CONSOLE_BAUDDIV;
    /* TX must be enabled before the first write, or QEMU leaves TXBF stuck set. */
    CMSDK_UART0->CTRL = CMSDK_UART_CTRL_TXEN_Msk | CMSDK_UART_CTRL_RXEN_Msk;
}

void board_uart_putc(uint8_t byte)
{
    while (CMSDK_UART0->STATE & CMSDK_UART_STATE_TXBF_Msk) {
    }
    CMSDK_UART0->DATA = byte;
}

int board_uart_rx_ready(void)
{
    return (CMSDK_UART0->STATE & CMSDK_UART_STATE_RXBF_Msk) != 0;
}

void board_uart_flush(void)
{
    /* The CMSDK UART has no shift-register status; QEMU sends a byte as soon as
     * it is written, so an empty TX buffer means everything has left. */
    while (CMSDK_UART0->STATE & CMSDK_UART_STATE_TXBF_Msk) {
    }
}

uint8_t board_uart_getc(void)
{
    while (!board_uart_rx_ready()) {
    }
    return (uint8_t)CMSDK_UART0->DATA;
}

void board_exit(int code)
{
    /* Under QEMU with -semihosting-config enable=on this ends the emulator with
     * exit status `code`. */
    semihost_exit(code);
}
