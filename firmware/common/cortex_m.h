/**
 * @file cortex_m.h
 * @brief The few Cortex-M4 core registers the firmware touches, with CMSIS names.
 *
 * A minimal stand-in for CMSIS core_cm4.h (not available on this machine):
 * same type, instance and mask names, so code written against it reads like
 * CMSIS code and can switch to the real header without edits.
 */
#ifndef TSN_CORTEX_M_H
#define TSN_CORTEX_M_H

#include <stdint.h>

#define __I  volatile const /**< read-only register */
#define __IO volatile       /**< read-write register */

/** System Control Block, the part starting at CPUID (0xE000ED00). */
typedef struct {
    __I  uint32_t CPUID;   /**< 0x00 CPUID base register */
    __IO uint32_t ICSR;    /**< 0x04 interrupt control and state */
    __IO uint32_t VTOR;    /**< 0x08 vector table offset */
    __IO uint32_t AIRCR;   /**< 0x0C application interrupt and reset control */
    __IO uint32_t SCR;     /**< 0x10 system control */
    __IO uint32_t CCR;     /**< 0x14 configuration and control */
    __IO uint8_t  SHP[12]; /**< 0x18 system handler priorities */
    __IO uint32_t SHCSR;   /**< 0x24 system handler control and state */
    __IO uint32_t CFSR;    /**< 0x28 configurable fault status */
    __IO uint32_t HFSR;    /**< 0x2C hard fault status */
    __IO uint32_t DFSR;    /**< 0x30 debug fault status */
    __IO uint32_t MMFAR;   /**< 0x34 memory management fault address */
    __IO uint32_t BFAR;    /**< 0x38 bus fault address */
    __IO uint32_t AFSR;    /**< 0x3C auxiliary fault status */
    __I  uint32_t PFR[2];  /**< 0x40 processor feature */
    __I  uint32_t DFR;     /**< 0x48 debug feature */
    __I  uint32_t ADR;     /**< 0x4C auxiliary feature */
    __I  uint32_t MMFR[4]; /**< 0x50 memory model feature */
    __I  uint32_t ISAR[5]; /**< 0x60 instruction set attributes */
    uint32_t RESERVED0[5];
    __IO uint32_t CPACR;   /**< 0x88 coprocessor access control */
} SCB_Type;

/** SysTick timer (0xE000E010). */
typedef struct {
    __IO uint32_t CTRL;  /**< control and status */
    __IO uint32_t LOAD;  /**< reload value (24 bits) */
    __IO uint32_t VAL;   /**< current value, counts down */
    __I  uint32_t CALIB; /**< calibration */
} SysTick_Type;

/** Memory Protection Unit, PMSAv7 (0xE000ED90). */
typedef struct {
    __I  uint32_t TYPE; /**< number of regions */
    __IO uint32_t CTRL; /**< enable, default map */
    __IO uint32_t RNR;  /**< region selected by RBAR/RASR */
    __IO uint32_t RBAR; /**< region base address */
    __IO uint32_t RASR; /**< region attributes and size */
} MPU_Type;

/** Nested Vectored Interrupt Controller, the enable and pending words (0xE000E100). */
typedef struct {
    __IO uint32_t ISER[8];      /**< 0x000 set-enable, one bit per interrupt */
    uint32_t RESERVED0[24];
    __IO uint32_t ICER[8];      /**< 0x080 clear-enable */
    uint32_t RESERVED1[24];
    __IO uint32_t ISPR[8];      /**< 0x100 set-pending */
    uint32_t RESERVED2[24];
    __IO uint32_t ICPR[8];      /**< 0x180 clear-pending */
} NVIC_Type;

/** Data Watchpoint and Trace unit, the cycle counter part (0xE0001000). */
typedef struct {
    __IO uint32_t CTRL;   /**< 0x00 control; CYCCNTENA starts the cycle counter */
    __IO uint32_t CYCCNT; /**< 0x04 core clock cycles, wraps at 2^32 */
} DWT_Type;

/** Core debug registers, the part holding DEMCR (0xE000EDF0). */
typedef struct {
    __IO uint32_t DHCSR; /**< 0x00 debug halting control and status */
    __IO uint32_t DCRSR; /**< 0x04 debug core register selector */
    __IO uint32_t DCRDR; /**< 0x08 debug core register data */
    __IO uint32_t DEMCR; /**< 0x0C debug exception and monitor control */
} CoreDebug_Type;

#define SCS_BASE       (0xE000E000UL)
#define SysTick_BASE   (SCS_BASE + 0x0010UL)
#define NVIC_BASE      (SCS_BASE + 0x0100UL)
#define SCB_BASE       (SCS_BASE + 0x0D00UL)
#define MPU_BASE       (SCS_BASE + 0x0D90UL)
#define CoreDebug_BASE (0xE000EDF0UL)
#define DWT_BASE       (0xE0001000UL)

#define SCB       ((SCB_Type *)SCB_BASE)
#define SysTick   ((SysTick_Type *)SysTick_BASE)
#define NVIC      ((NVIC_Type *)NVIC_BASE)
#define MPU       ((MPU_Type *)MPU_BASE)
#define CoreDebug ((CoreDebug_Type *)CoreDebug_BASE)
#define DWT       ((DWT_Type *)DWT_BASE)

/** Interrupt lines covered by NVIC ICER/ICPR (8 words of 32 on ARMv7-M). */
#define NVIC_IRQ_WORDS 8U

#define SCB_ICSR_PENDSTSET_Msk    (1UL << 26) /**< SysTick exception is pending */
#define SCB_ICSR_PENDSTCLR_Msk    (1UL << 25) /**< write 1: clear a pending SysTick */

/* AIRCR writes are ignored unless VECTKEY holds 0x05FA. */
#define SCB_AIRCR_VECTKEY_Pos     16U
#define SCB_AIRCR_VECTKEY         (0x05FAUL << SCB_AIRCR_VECTKEY_Pos)
#define SCB_AIRCR_PRIGROUP_Msk    (7UL << 8)  /**< priority grouping, kept across a reset request */
#define SCB_AIRCR_SYSRESETREQ_Msk (1UL << 2)  /**< request a system reset */

#define SCB_VTOR_TBLOFF_Msk       (0xFFFFFF80UL) /**< the table address bits VTOR holds */
#define IPSR_ISR_NUMBER_Msk       (0x1FFUL)   /**< IPSR: active exception number */

/* CPACR: CP10 and CP11 (the FPU) full access = 0b11 each, bits 20..23. */
#define SCB_CPACR_CP10_CP11_FULL  (0xFUL << 20)

#define SCB_SHCSR_MEMFAULTENA_Msk (1UL << 16) /**< MemManage faults not escalated */

#define MPU_TYPE_DREGION_Pos       8U
#define MPU_TYPE_DREGION_Msk       (0xFFUL << MPU_TYPE_DREGION_Pos)
#define MPU_CTRL_ENABLE_Msk        (1UL << 0)
#define MPU_CTRL_PRIVDEFENA_Msk    (1UL << 2) /**< default memory map for privileged code */
#define MPU_RASR_ENABLE_Msk        (1UL << 0)
#define MPU_RASR_SIZE_Pos          1U         /**< region size = 2^(SIZE + 1) bytes */
#define MPU_RASR_AP_Pos            24U        /**< access permission; 0 = no access */
#define MPU_RASR_XN_Msk            (1UL << 28)

#define DWT_CTRL_CYCCNTENA_Msk     (1UL << 0)  /**< run the cycle counter */
#define DWT_CTRL_NOCYCCNT_Msk      (1UL << 25) /**< read-only: no cycle counter fitted */
#define CoreDebug_DEMCR_TRCENA_Msk (1UL << 24) /**< power the DWT and ITM */

#define SysTick_CTRL_COUNTFLAG_Msk (1UL << 16)
#define SysTick_CTRL_CLKSOURCE_Msk (1UL << 2) /**< 1 = processor clock */
#define SysTick_CTRL_TICKINT_Msk   (1UL << 1) /**< raise SysTick exception on wrap */
#define SysTick_CTRL_ENABLE_Msk    (1UL << 0)
#define SysTick_LOAD_RELOAD_Msk    (0xFFFFFFUL) /**< the counter is 24 bits wide */

static inline void __DSB(void) { __asm volatile("dsb 0xF" ::: "memory"); }
static inline void __ISB(void) { __asm volatile("isb 0xF" ::: "memory"); }

static inline uint32_t __get_PRIMASK(void)
{
    uint32_t result;
    __asm volatile("mrs %0, primask" : "=r"(result));
    return result;
}

static inline void __set_PRIMASK(uint32_t primask)
{
    __asm volatile("msr primask, %0" : : "r"(primask) : "memory");
}

static inline void __disable_irq(void) { __asm volatile("cpsid i" ::: "memory"); }
static inline void __enable_irq(void) { __asm volatile("cpsie i" ::: "memory"); }

static inline void __set_CONTROL(uint32_t control)
{
    __asm volatile("msr control, %0" : : "r"(control) : "memory");
}

static inline uint32_t __get_IPSR(void)
{
    uint32_t result;
    __asm volatile("mrs %0, ipsr" : "=r"(result));
    return result;
}

static inline uint32_t __get_MSP(void)
{
    uint32_t result;
    __asm volatile("mrs %0, msp" : "=r"(result));
    return result;
}

#endif /* TSN_CORTEX_M_H */
