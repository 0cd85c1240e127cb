/**
 * @file board.c
 * @brief NUCLEO-L4R5ZI: 120 MHz system clock, console on LPUART1 (ST-LINK virtual COM port).
 *
 * Clock (RM0432 6.2 and 5.1.8): MSI at its reset frequency, 4 MHz, feeds the
 * main PLL: /1 (PLLM) x60 (PLLN) = 240 MHz VCO, /2 (PLLR) = 120 MHz SYSCLK; AHB,
 * APB1 and APB2 undivided. Above 80 MHz the regulator must run in range 1 boost
 * mode and the flash needs 5 wait states (RM0432 table 12). Boost sequence per
 * RM0432 5.1.8: AHB /2 first, clear R1MODE, raise the flash latency, switch to
 * the PLL, wait at least 1 us, then AHB /1.
 *
 * Console: LPUART1, PG7 = TX, PG8 = RX, alternate function 8 (STM32L4R5 data
 * sheet, alternate function table; NUCLEO-L4R5ZI user manual UM2179: the ST-LINK
 * virtual COM port). Port G runs from VDDIO2, which PWR_CR2.IOSV must declare
 * valid before the pins work (RM0432 5.1.4). Clocked from PCLK1 = 120 MHz
 * (RCC_CCIPR.LPUART1SEL reset value), 115200 8N1.
 */
#include "board.h"

#include "cortex_m.h"
#include "stm32l4r5.h"

/* PLL: 4 MHz MSI / 1 * 60 / 2 = 120 MHz. */
#define PLL_M_DIV1         0UL  /**< PLLM field: division = value + 1 */
#define PLL_N              60UL
#define PLL_R_DIV2         0UL  /**< PLLR field 0 = /2 */
#define PLL_CONFIG         (RCC_PLLCFGR_PLLSRC_MSI | (PLL_M_DIV1 << RCC_PLLCFGR_PLLM_Pos) | \
                            (PLL_N << RCC_PLLCFGR_PLLN_Pos) | (PLL_R_DIV2 << RCC_PLLCFGR_PLLR_Pos) | \
                            RCC_PLLCFGR_PLLREN)

/** Flash wait states for HCLK <= 120 MHz in range 1 (RM0432 3.3.3, table 12). */
#define FLASH_LATENCY_120MHZ 5UL

/** RM0432 5.1.8 asks for >= 1 us at AHB /2 after the switch: at 60 MHz HCLK 1 us is
 *  60 cycles, and every spin of the delay loop takes at least one. */
#define BOOST_SETTLE_SPINS 120U

/* Console. */
#define CONSOLE_BAUD      115200UL
#define LPUART_BRR_SCALE  256ULL     /**< LPUART: BRR = 256 * f_ck / baud */
#define CONSOLE_BRR       ((uint32_t)((LPUART_BRR_SCALE * BOARD_CORE_CLOCK_HZ + CONSOLE_BAUD / 2U) / CONSOLE_BAUD))
_Static_assert(CONSOLE_BRR >= LPUART_BRR_MIN && CONSOLE_BRR <= LPUART_BRR_MAX, "LPUART1 BRR out of range");
#define CONSOLE_TX_PIN    7U
#define CONSOLE_RX_PIN    8U
#define CONSOLE_AF        8UL        /**< LPUART1 on PG7/PG8 */

static void wait_set(volatile const uint32_t *reg, uint32_t mask)
{
    while ((*reg & mask) != mask) {
    }
}

static void wait_clear(volatile const uint32_t *reg, uint32_t mask)
{
    while ((*reg & mask) != 0U) {
    }
}

static int clock_is_configured(void)
{
    return (RCC->CFGR & RCC_CFGR_SWS_Msk) == RCC_CFGR_SWS_PLL && RCC->PLLCFGR == PLL_CONFIG &&
           (RCC->CFGR & RCC_CFGR_HPRE_Msk) == RCC_CFGR_HPRE_DIV1 && (PWR->CR5 & PWR_CR5_R1MODE) == 0U &&
           (FLASH->ACR & FLASH_ACR_LATENCY_Msk) == FLASH_LATENCY_120MHZ;
}

static void clock_init(void)
{
    RCC->APB1ENR1 |= RCC_APB1ENR1_PWREN;
    (void)RCC->APB1ENR1; /* read back: the clock is on before PWR is touched */
    if (clock_is_configured()) {
        return; /* the bootloader (or an earlier call) did it: the PLL must not be reprogrammed live */
    }

    /* Run from MSI while the PLL is (re)configured: PLLCFGR is read-only while PLLON. */
    RCC->CR |= RCC_CR_MSION;
    wait_set(&RCC->CR, RCC_CR_MSIRDY);
    RCC->CFGR = (RCC->CFGR & ~RCC_CFGR_SW_Msk) | RCC_CFGR_SW_MSI;
    while ((RCC->CFGR & RCC_CFGR_SWS_Msk) != RCC_CFGR_SWS_MSI) {
    }
    RCC->CR &= ~RCC_CR_PLLON;
    wait_clear(&RCC->CR, RCC_CR_PLLRDY);

    /* Range 1 (the reset value; set it anyway) and wait until the regulator is there. */
    PWR->CR1 = (PWR->CR1 & ~PWR_CR1_VOS_Msk) | PWR_CR1_VOS_RANGE1;
    wait_clear(&PWR->SR2, PWR_SR2_VOSF);

    /* Boost sequence, RM0432 5.1.8. */
    RCC->CFGR = (RCC->CFGR & ~RCC_CFGR_HPRE_Msk) | RCC_CFGR_HPRE_DIV2;
    PWR->CR5 &= ~PWR_CR5_R1MODE;
    FLASH->ACR = (FLASH->ACR & ~FLASH_ACR_LATENCY_Msk) | FLASH_LATENCY_120MHZ | FLASH_ACR_PRFTEN |
                 FLASH_ACR_ICEN | FLASH_ACR_DCEN;
    while ((FLASH->ACR & FLASH_ACR_LATENCY_Msk) != FLASH_LATENCY_120MHZ) {
        /* RM0432 3.3.3: check the new latency is in place before raising the clock. */
    }

    RCC->PLLCFGR = PLL_CONFIG;
    RCC->CR |= RCC_CR_PLLON;
    wait_set(&RCC->CR, RCC_CR_PLLRDY);
    RCC->CFGR = (RCC->CFGR & ~(RCC_CFGR_SW_Msk | RCC_CFGR_PPRE1_Msk | RCC_CFGR_PPRE2_Msk)) | RCC_CFGR_SW_PLL;
    while ((RCC->CFGR & RCC_CFGR_SWS_Msk) != RCC_CFGR_SWS_PLL) {
    }

    for (volatile uint32_t spin = 0; spin < BOOST_SETTLE_SPINS; ++spin) {
    }
    RCC->CFGR = (RCC->CFGR & ~RCC_CFGR_HPRE_Msk) | RCC_CFGR_HPRE_DIV1;
}

static void gpio_set_af(GPIO_TypeDef *port, uint32_t pin, uint32_t af)
{
    const uint32_t shift2 = pin * GPIO_MODER_BITS;
    const uint32_t afr = pin / GPIO_PINS_PER_AFR;
    const uint32_t shift4 = (pin % GPIO_PINS_PER_AFR) * GPIO_AFR_BITS;
    port->AFR[afr] = (port->AFR[afr] & ~(GPIO_AFR_Msk << shift4)) | (af << shift4);
    port->OSPEEDR = (port->OSPEEDR & ~(GPIO_MODER_Msk << shift2)) | (GPIO_OSPEEDR_HIGH << shift2);
    /* A pull-up keeps an unconnected RX line idle (high) instead of floating into noise. */
    port->PUPDR = (port->PUPDR & ~(GPIO_MODER_Msk << shift2)) | (GPIO_PUPDR_PULL_UP << shift2);
    port->MODER = (port->MODER & ~(GPIO_MODER_Msk << shift2)) | (GPIO_MODER_AF << shift2);
}

static void console_init(void)
{
    const uint32_t enabled = USART_CR1_UE | USART_CR1_TE | USART_CR1_RE;
    if ((LPUART1->CR1 & enabled) == enabled && LPUART1->BRR == CONSOLE_BRR) {
        return; /* already running: re-initialising would cut a byte in flight */
    }
    RCC->AHB2ENR |= RCC_AHB2ENR_GPIOGEN;
    RCC->APB1ENR2 |= RCC_APB1ENR2_LPUART1EN;
    (void)RCC->APB1ENR2;
    PWR->CR2 |= PWR_CR2_IOSV; /* port G is powered from VDDIO2 */

    gpio_set_af(GPIOG, CONSOLE_TX_PIN, CONSOLE_AF);
    gpio_set_af(GPIOG, CONSOLE_RX_PIN, CONSOLE_AF);

    LPUART1->CR1 = 0U; /* BRR and CR3 may only change while UE = 0; 8N1 is CR1/CR2 = 0 */
    LPUART1->CR2 = 0U;
    /* The bootloader protocol polls; if a byte is missed, a newer one must win
     * rather than reception stopping on a sticky overrun flag. */
    LPUART1->CR3 = USART_CR3_OVRDIS;
    LPUART1->BRR = CONSOLE_BRR;
    LPUART1->CR1 = enabled;
    wait_set(&LPUART1->ISR, USART_ISR_TEACK | USART_ISR_REACK);
}

void board_init(void)
{
    clock_init();
    console_init();
}

void board_uart_putc(uint8_t byte)
{
    wait_set(&LPUART1->ISR, USART_ISR_TXE);
    LPUART1->TDR = byte;
}

int board_uart_rx_ready(void)
{
    return (LPUART1->ISR & USART_ISR_RXNE) != 0U;
}

uint8_t board_uart_getc(void)
{
    while (!board_uart_rx_ready()) {
    }
    return (uint8_t)LPUART1->RDR;
}

void board_uart_flush(void)
{
    /* TC: the last byte's stop bit has left the shift register. */
    wait_set(&LPUART1->ISR, USART_ISR_TXE | USART_ISR_TC);
}

void board_exit(int code)
{
    (void)code; /* no host process to hand it to */
    board_uart_flush();
    __disable_irq();
    for (;;) {
    }
}
