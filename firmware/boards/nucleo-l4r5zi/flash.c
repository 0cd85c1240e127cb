/**
 * @file flash.c
 * @brief STM32L4R5 flash controller: page erase and double-word programming (RM0432 3.3).
 *
 * Sequences from RM0432 3.3.6 (page erase) and 3.3.7 (standard programming):
 * unlock FLASH_CR with the KEYR sequence, wait for BSY clear, clear stale error
 * flags, then
 *  - erase: PER + page number (PNB) + bank (BKER), STRT, wait BSY;
 *  - program: PG, two 32-bit writes to one aligned double word, wait BSY;
 * check the error flags, clear PER/PG, lock again.
 *
 * Geometry (RM0432 3.3.1): with OPTR.DBANK = 1 (the factory setting) two 1 MiB
 * banks of 256 pages of 4 KiB; page numbers count within a bank and BKER picks
 * the bank. With DBANK = 0 one bank of 256 pages of 8 KiB and BKER unused.
 * SYSCFG_MEMRMP.FB_MODE swaps which physical bank is seen at 0x08000000; BKER
 * names the physical bank, so the swap is undone when computing it.
 *
 * Caches: the data cache must be off while programming (STM32L4 errata: a
 * read-while-write can corrupt it), and both caches are reset afterwards so no
 * stale line of an erased or rewritten page is ever read back.
 */
#include "flash.h"

#include <string.h>

#include "stm32l4r5.h"

extern const uint8_t __flash_base[];
extern const uint8_t __flash_size[];

#define PAGE_BYTES_DUAL_BANK   4096U
#define PAGE_BYTES_SINGLE_BANK 8192U
#define WORDS_PER_UNIT         (FLASH_PROGRAM_UNIT / sizeof(uint32_t))
#define ERASED_WORD            0xFFFFFFFFUL

/** BSY polls before giving up. A page erase takes at most ~25 ms (datasheet t_ERASE),
 *  ~3 M cycles at 120 MHz; a double word ~90 us. Each poll is several cycles, so
 *  this bound is over a second: only a hung controller reaches it. */
#define BUSY_SPINS             50000000UL

uint32_t flash_page_bytes(void)
{
    return (FLASH->OPTR & FLASH_OPTR_DBANK) ? PAGE_BYTES_DUAL_BANK : PAGE_BYTES_SINGLE_BANK;
}

static flash_status wait_ready(void)
{
    for (uint32_t spin = 0; spin < BUSY_SPINS; ++spin) {
        if ((FLASH->SR & FLASH_SR_BSY) == 0U) {
            return FLASH_OK;
        }
    }
    return FLASH_ERR_TIMEOUT;
}

/* Error flags of the last operation (they are write-1-to-clear), as a status. */
static flash_status take_errors(void)
{
    const uint32_t errors = FLASH->SR & FLASH_SR_ERRORS;
    FLASH->SR = errors | FLASH_SR_EOP;
    return errors & FLASH_ERR_CONTROLLER_Msk;
}

static flash_status unlock(void)
{
    if (FLASH->CR & FLASH_CR_LOCK) {
        FLASH->KEYR = FLASH_KEY1;
        FLASH->KEYR = FLASH_KEY2;
    }
    /* A wrong sequence locks FLASH_CR until the next reset. */
    return (FLASH->CR & FLASH_CR_LOCK) ? FLASH_ERR_LOCKED : FLASH_OK;
}

static void lock(void)
{
    FLASH->CR |= FLASH_CR_LOCK;
}

/* Caches off for the operation; returns the ACR enable bits to restore. */
static uint32_t caches_off(void)
{
    const uint32_t enabled = FLASH->ACR & (FLASH_ACR_ICEN | FLASH_ACR_DCEN);
    FLASH->ACR &= ~(FLASH_ACR_ICEN | FLASH_ACR_DCEN);
    return enabled;
}

/* Reset both caches (allowed only while disabled), then re-enable what was on. */
static void caches_reset_restore(uint32_t enabled)
{
    FLASH->ACR |= FLASH_ACR_ICRST | FLASH_ACR_DCRST;
    FLASH->ACR &= ~(FLASH_ACR_ICRST | FLASH_ACR_DCRST);
    FLASH->ACR |= enabled;
}

/* Start one operation: controller idle, unlocked, no stale error flags. */
static flash_status begin_operation(void)
{
    flash_status status = wait_ready();
    if (status == FLASH_OK) {
        status = unlock();
    }
    (void)take_errors(); /* flags of an earlier operation must not fail this one */
    return status;
}

static flash_status erase_page(uint32_t address)
{
    const uint32_t offset = address - (uint32_t)(uintptr_t)__flash_base;
    uint32_t page;
    uint32_t bank2 = 0U;
    if (FLASH->OPTR & FLASH_OPTR_DBANK) {
        const uint32_t bank_bytes = (uint32_t)(uintptr_t)__flash_size / 2U;
        bank2 = offset / bank_bytes;
        page = (offset % bank_bytes) / PAGE_BYTES_DUAL_BANK;
        /* SYSCFG reads as 0 while unclocked: enable it before asking about the swap. */
        RCC->APB2ENR |= RCC_APB2ENR_SYSCFGEN;
        (void)RCC->APB2ENR;
        if (SYSCFG->MEMRMP & SYSCFG_MEMRMP_FB_MODE) {
            bank2 ^= 1U;
        }
    } else {
        page = offset / PAGE_BYTES_SINGLE_BANK;
    }

    const uint32_t cr = (FLASH->CR & ~(FLASH_CR_PG | FLASH_CR_PNB_Msk | FLASH_CR_BKER)) | FLASH_CR_PER |
                        ((page << FLASH_CR_PNB_Pos) & FLASH_CR_PNB_Msk) | (bank2 ? FLASH_CR_BKER : 0U);
    FLASH->CR = cr;
    FLASH->CR = cr | FLASH_CR_STRT;
    flash_status status = wait_ready();
    status |= take_errors();
    FLASH->CR &= ~(FLASH_CR_PER | FLASH_CR_PNB_Msk | FLASH_CR_BKER);
    return status;
}

flash_status flash_erase(uint32_t address, uint32_t length)
{
    const uint32_t page = flash_page_bytes();
    const flash_status checked = flash_check_erase(address, length);
    if (checked != FLASH_OK) {
        return checked;
    }
    const uint32_t pages = (length + page - 1U) / page;

    const uint32_t caches = caches_off();
    flash_status status = begin_operation();
    for (uint32_t i = 0; i < pages && status == FLASH_OK; ++i) {
        status = erase_page(address + i * page);
    }
    lock();
    caches_reset_restore(caches);
    return status;
}

static flash_status program_unit(uint32_t address, const uint32_t words[WORDS_PER_UNIT])
{
    volatile uint32_t *unit = (volatile uint32_t *)(uintptr_t)address;
    if (unit[0] != ERASED_WORD || unit[1] != ERASED_WORD) {
        return FLASH_ERR_NOT_ERASED; /* the controller would refuse too (PROGERR) */
    }
    FLASH->CR |= FLASH_CR_PG;
    /* The double word is written as two words, first the low address (RM0432 3.3.7). */
    unit[0] = words[0];
    unit[1] = words[1];
    flash_status status = wait_ready();
    status |= take_errors();
    FLASH->CR &= ~FLASH_CR_PG;
    return status;
}

flash_status flash_program(uint32_t address, const void *data, uint32_t length)
{
    const flash_status checked = flash_check_program(address, length);
    if (checked != FLASH_OK) {
        return checked;
    }
    const uint8_t *source = (const uint8_t *)data;

    const uint32_t caches = caches_off();
    flash_status status = begin_operation();
    for (uint32_t done = 0; done < length && status == FLASH_OK; done += FLASH_PROGRAM_UNIT) {
        uint32_t words[WORDS_PER_UNIT];
        memcpy(words, source + done, sizeof(words)); /* the source may be unaligned */
        status = program_unit(address + done, words);
    }
    lock();
    caches_reset_restore(caches);

    /* Read back through the (reset) caches, as everything later will. */
    if (status == FLASH_OK && memcmp((const void *)(uintptr_t)address, data, length) != 0) {
        status = FLASH_ERR_VERIFY;
    }
    return status;
}
