/**
 * @file stm32l4r5.h
 * @brief The few STM32L4R5 peripheral registers this board layer touches.
 *
 * Addresses, offsets and bit positions from ST RM0432 (STM32L4+ reference
 * manual): memory map section 2.2.2 (table 3), PWR section 5.4, RCC section 6.4,
 * FLASH section 3.7, SYSCFG section 9.2, GPIO section 8.5, LPUART section 39.7.
 * Names follow ST's CMSIS device header so the code reads like CMSIS code.
 * Every struct's layout is checked against the manual's offsets below.
 */
#ifndef TSN_STM32L4R5_H
#define TSN_STM32L4R5_H

#include <stddef.h>
#include <stdint.h>

#include "cortex_m.h"

/* ---- Reset and clock control (RM0432 6.4) --------------------------------- */
typedef struct {
    __IO uint32_t CR;          /**< 0x00 clock control */
    __IO uint32_t ICSCR;       /**< 0x04 internal clock sources calibration */
    __IO uint32_t CFGR;        /**< 0x08 clock configuration */
    __IO uint32_t PLLCFGR;     /**< 0x0C main PLL configuration */
    uint32_t RESERVED0[14];    /**< 0x10..0x44 */
    __IO uint32_t AHB1ENR;     /**< 0x48 AHB1 peripheral clock enable */
    __IO uint32_t AHB2ENR;     /**< 0x4C AHB2 peripheral clock enable */
    __IO uint32_t AHB3ENR;     /**< 0x50 AHB3 peripheral clock enable */
    uint32_t RESERVED1;        /**< 0x54 */
    __IO uint32_t APB1ENR1;    /**< 0x58 APB1 peripheral clock enable 1 */
    __IO uint32_t APB1ENR2;    /**< 0x5C APB1 peripheral clock enable 2 */
    __IO uint32_t APB2ENR;     /**< 0x60 APB2 peripheral clock enable */
} RCC_TypeDef;
_Static_assert(offsetof(RCC_TypeDef, AHB1ENR) == 0x48U, "RCC_AHB1ENR at 0x48");
_Static_assert(offsetof(RCC_TypeDef, APB2ENR) == 0x60U, "RCC_APB2ENR at 0x60");

#define RCC_CR_MSION              (1UL << 0)
#define RCC_CR_MSIRDY             (1UL << 1)
#define RCC_CR_PLLON              (1UL << 24)
#define RCC_CR_PLLRDY             (1UL << 25)

#define RCC_CFGR_SW_Pos           0U
#define RCC_CFGR_SW_Msk           (3UL << RCC_CFGR_SW_Pos)
#define RCC_CFGR_SW_MSI           (0UL << RCC_CFGR_SW_Pos)
#define RCC_CFGR_SW_PLL           (3UL << RCC_CFGR_SW_Pos)
#define RCC_CFGR_SWS_Pos          2U
#define RCC_CFGR_SWS_Msk          (3UL << RCC_CFGR_SWS_Pos)
#define RCC_CFGR_SWS_MSI          (0UL << RCC_CFGR_SWS_Pos)
#define RCC_CFGR_SWS_PLL          (3UL << RCC_CFGR_SWS_Pos)
#define RCC_CFGR_HPRE_Pos         4U
#define RCC_CFGR_HPRE_Msk         (0xFUL << RCC_CFGR_HPRE_Pos)
#define RCC_CFGR_HPRE_DIV1        (0x0UL << RCC_CFGR_HPRE_Pos)
#define RCC_CFGR_HPRE_DIV2        (0x8UL << RCC_CFGR_HPRE_Pos)
#define RCC_CFGR_PPRE1_Msk        (7UL << 8)  /**< APB1 prescaler; 0 = /1 */
#define RCC_CFGR_PPRE2_Msk        (7UL << 11) /**< APB2 prescaler; 0 = /1 */

#define RCC_PLLCFGR_PLLSRC_Pos    0U
#define RCC_PLLCFGR_PLLSRC_MSI    (1UL << RCC_PLLCFGR_PLLSRC_Pos)
#define RCC_PLLCFGR_PLLM_Pos      4U          /**< L4+: 4 bits, division = PLLM + 1 */
#define RCC_PLLCFGR_PLLN_Pos      8U          /**< VCO multiplier, 8..127 */
#define RCC_PLLCFGR_PLLREN        (1UL << 24) /**< PLLCLK (R output, the system clock) enable */
#define RCC_PLLCFGR_PLLR_Pos      25U         /**< 0 = /2, 1 = /4, 2 = /6, 3 = /8 */

#define RCC_AHB2ENR_GPIOGEN       (1UL << 6)
#define RCC_APB1ENR1_PWREN        (1UL << 28)
#define RCC_APB1ENR2_LPUART1EN    (1UL << 0)
#define RCC_APB2ENR_SYSCFGEN      (1UL << 0)

/* ---- Power control (RM0432 5.4) -------------------------------------------- */
typedef struct {
    __IO uint32_t CR1;         /**< 0x00 voltage scaling (VOS) */
    __IO uint32_t CR2;         /**< 0x04 IOSV: VDDIO2 (port G) valid */
    __IO uint32_t CR3;         /**< 0x08 */
    __IO uint32_t CR4;         /**< 0x0C */
    __IO uint32_t SR1;         /**< 0x10 */
    __IO uint32_t SR2;         /**< 0x14 VOSF: voltage scaling in progress */
    uint32_t RESERVED0[26];    /**< 0x18..0x7C */
    __IO uint32_t CR5;         /**< 0x80 R1MODE: range 1 boost / normal */
} PWR_TypeDef;
_Static_assert(offsetof(PWR_TypeDef, CR5) == 0x80U, "PWR_CR5 at 0x80");

#define PWR_CR1_VOS_Pos           9U
#define PWR_CR1_VOS_Msk           (3UL << PWR_CR1_VOS_Pos)
#define PWR_CR1_VOS_RANGE1        (1UL << PWR_CR1_VOS_Pos)
#define PWR_CR2_IOSV              (1UL << 9)
#define PWR_SR2_VOSF              (1UL << 10)
#define PWR_CR5_R1MODE            (1UL << 8)  /**< 1 = range 1 normal, 0 = range 1 boost (up to 120 MHz) */

/* ---- Flash interface (RM0432 3.7) ----------------------------------------- */
typedef struct {
    __IO uint32_t ACR;         /**< 0x00 access control: latency, caches */
    __IO uint32_t PDKEYR;      /**< 0x04 power-down key */
    __IO uint32_t KEYR;        /**< 0x08 unlock key for FLASH_CR */
    __IO uint32_t OPTKEYR;     /**< 0x0C option bytes key */
    __IO uint32_t SR;          /**< 0x10 status */
    __IO uint32_t CR;          /**< 0x14 control */
    __IO uint32_t ECCR;        /**< 0x18 ECC */
    uint32_t RESERVED0;        /**< 0x1C */
    __IO uint32_t OPTR;        /**< 0x20 option register (DBANK) */
} FLASH_TypeDef;
_Static_assert(offsetof(FLASH_TypeDef, OPTR) == 0x20U, "FLASH_OPTR at 0x20");

#define FLASH_ACR_LATENCY_Pos     0U
#define FLASH_ACR_LATENCY_Msk     (0xFUL << FLASH_ACR_LATENCY_Pos)
#define FLASH_ACR_PRFTEN          (1UL << 8)
#define FLASH_ACR_ICEN            (1UL << 9)
#define FLASH_ACR_DCEN            (1UL << 10)
#define FLASH_ACR_ICRST           (1UL << 11) /**< reset the instruction cache; only while ICEN = 0 */
#define FLASH_ACR_DCRST           (1UL << 12) /**< reset the data cache; only while DCEN = 0 */

#define FLASH_KEY1                0x45670123UL /**< FLASH_KEYR unlock sequence, RM0432 3.3.5 */
#define FLASH_KEY2                0xCDEF89ABUL

#define FLASH_SR_EOP              (1UL << 0)
#define FLASH_SR_OPERR            (1UL << 1)
#define FLASH_SR_PROGERR          (1UL << 3)
#define FLASH_SR_WRPERR           (1UL << 4)
#define FLASH_SR_PGAERR           (1UL << 5)
#define FLASH_SR_SIZERR           (1UL << 6)
#define FLASH_SR_PGSERR           (1UL << 7)
#define FLASH_SR_MISERR           (1UL << 8)
#define FLASH_SR_FASTERR          (1UL << 9)
#define FLASH_SR_RDERR            (1UL << 14)
#define FLASH_SR_OPTVERR          (1UL << 15)
#define FLASH_SR_BSY              (1UL << 16)
#define FLASH_SR_ERRORS           (FLASH_SR_OPERR | FLASH_SR_PROGERR | FLASH_SR_WRPERR | FLASH_SR_PGAERR | \
                                   FLASH_SR_SIZERR | FLASH_SR_PGSERR | FLASH_SR_MISERR | FLASH_SR_FASTERR | \
                                   FLASH_SR_RDERR | FLASH_SR_OPTVERR)

#define FLASH_CR_PG               (1UL << 0)
#define FLASH_CR_PER              (1UL << 1)
#define FLASH_CR_PNB_Pos          3U
#define FLASH_CR_PNB_Msk          (0xFFUL << FLASH_CR_PNB_Pos) /**< page number within the bank */
#define FLASH_CR_BKER             (1UL << 11) /**< page erase in bank 2 (dual-bank mode only) */
#define FLASH_CR_STRT             (1UL << 16)
#define FLASH_CR_LOCK             (1UL << 31)

#define FLASH_OPTR_DBANK          (1UL << 22) /**< 1 = dual bank, 4 KiB pages; 0 = single bank, 8 KiB */

/* ---- System configuration (RM0432 9.2) ------------------------------------ */
typedef struct {
    __IO uint32_t MEMRMP;      /**< 0x00 memory remap: FB_MODE (flash banks swapped) */
} SYSCFG_TypeDef;

#define SYSCFG_MEMRMP_FB_MODE     (1UL << 8)

/* ---- GPIO (RM0432 8.5) ---------------------------------------------------- */
typedef struct {
    __IO uint32_t MODER;       /**< 0x00 mode, 2 bits per pin */
    __IO uint32_t OTYPER;      /**< 0x04 output type */
    __IO uint32_t OSPEEDR;     /**< 0x08 output speed, 2 bits per pin */
    __IO uint32_t PUPDR;       /**< 0x0C pull-up / pull-down, 2 bits per pin */
    __IO uint32_t IDR;         /**< 0x10 input data */
    __IO uint32_t ODR;         /**< 0x14 output data */
    __IO uint32_t BSRR;        /**< 0x18 bit set / reset */
    __IO uint32_t LCKR;        /**< 0x1C lock */
    __IO uint32_t AFR[2];      /**< 0x20 alternate function, 4 bits per pin: [0] pins 0..7, [1] pins 8..15 */
} GPIO_TypeDef;
_Static_assert(offsetof(GPIO_TypeDef, AFR) == 0x20U, "GPIO_AFRL at 0x20");

#define GPIO_MODER_BITS           2U
#define GPIO_MODER_Msk            3UL
#define GPIO_MODER_AF             2UL
#define GPIO_OSPEEDR_HIGH         2UL
#define GPIO_PUPDR_PULL_UP        1UL
#define GPIO_AFR_BITS             4U
#define GPIO_AFR_Msk              0xFUL
#define GPIO_PINS_PER_AFR         8U

/* ---- Low-power UART (RM0432 39.7) ----------------------------------------- */
typedef struct {
    __IO uint32_t CR1;         /**< 0x00 control 1 */
    __IO uint32_t CR2;         /**< 0x04 control 2 */
    __IO uint32_t CR3;         /**< 0x08 control 3 */
    __IO uint32_t BRR;         /**< 0x0C baud rate: 256 * f_ck / baud, 20 bits */
    uint32_t RESERVED0[2];     /**< 0x10..0x14 */
    __IO uint32_t RQR;         /**< 0x18 request */
    __IO uint32_t ISR;         /**< 0x1C interrupt and status */
    __IO uint32_t ICR;         /**< 0x20 interrupt flag clear */
    __IO uint32_t RDR;         /**< 0x24 receive data */
    __IO uint32_t TDR;         /**< 0x28 transmit data */
    __IO uint32_t PRESC;       /**< 0x2C clock prescaler */
} LPUART_TypeDef;
_Static_assert(offsetof(LPUART_TypeDef, ISR) == 0x1CU, "LPUART_ISR at 0x1C");
_Static_assert(offsetof(LPUART_TypeDef, PRESC) == 0x2CU, "LPUART_PRESC at 0x2C");

#define USART_CR1_UE              (1UL << 0)
#define USART_CR1_RE              (1UL << 2)
#define USART_CR1_TE              (1UL << 3)
#define USART_CR3_OVRDIS          (1UL << 12) /**< an overrun overwrites RDR instead of stopping reception */
#define USART_ISR_ORE             (1UL << 3)
#define USART_ISR_RXNE            (1UL << 5)
#define USART_ISR_TC              (1UL << 6)
#define USART_ISR_TXE             (1UL << 7)
#define USART_ISR_TEACK           (1UL << 21)
#define USART_ISR_REACK           (1UL << 22)
#define USART_ICR_ORECF           (1UL << 3)
#define LPUART_BRR_MIN            0x300UL     /**< smaller values are forbidden (RM0432 39.4.7) */
#define LPUART_BRR_MAX            0xFFFFFUL

/* ---- Base addresses (RM0432 2.2.2, table 3) -------------------------------- */
#define PWR_BASE      0x40007000UL
#define LPUART1_BASE  0x40008000UL
#define SYSCFG_BASE   0x40010000UL
#define RCC_BASE      0x40021000UL
#define FLASH_R_BASE  0x40022000UL
#define GPIOG_BASE    0x48001800UL

#define PWR     ((PWR_TypeDef *)PWR_BASE)
#define LPUART1 ((LPUART_TypeDef *)LPUART1_BASE)
#define SYSCFG  ((SYSCFG_TypeDef *)SYSCFG_BASE)
#define RCC     ((RCC_TypeDef *)RCC_BASE)
#define FLASH   ((FLASH_TypeDef *)FLASH_R_BASE)
#define GPIOG   ((GPIO_TypeDef *)GPIOG_BASE)

#endif /* TSN_STM32L4R5_H */
