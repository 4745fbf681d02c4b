/* The case forms aws/event-ruler accepts for a pattern character under
 * equals-ignore-case (and its prefix, suffix and anything-but forms): the
 * character's lower and upper case as Java's String.toLowerCase and
 * toUpperCase(Locale.ROOT) give them, which may be longer than it ("ß" ->
 * "SS"). Generated into ad_casemap.c by GenCaseMap.java; sorted by cp, BMP
 * characters over 0x7F whose forms differ from themselves only (event-ruler
 * folds per UTF-16 unit, so characters beyond the BMP are never folded). */
#ifndef AD_CASEMAP_H
#define AD_CASEMAP_H

typedef struct ad_casemap_t {
    unsigned short cp;
    unsigned char lo_len, up_len;
    char lo[4], up[7]; /* UTF-8 */
} ad_casemap_t;

extern const ad_casemap_t ad_casemap[];
extern const int ad_casemap_n;

#endif
