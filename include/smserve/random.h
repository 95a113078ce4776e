/* splitmix64: a small, seedable generator that gives the same numbers on
 * every platform (the parity probes' rows, capture's sampling seeds). Not
 * for anything that must be unpredictable. */
#ifndef SMSERVE_RANDOM_H
#define SMSERVE_RANDOM_H

#include <stdint.h>

static inline uint64_t sms_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1), 53 bits. */
static inline double sms_splitmix64_unit(uint64_t *state)
{
    return (double)(sms_splitmix64(state) >> 11) * (1.0 / 9007199254740992.0);
}

#endif
