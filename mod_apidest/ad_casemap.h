/* The case forms aws/event-ruler accepts for a pattern character under
 * equals-ignore-case (and its prefix, suffix and anything-but forms): the
 * character's lower and upper case as Java's String.toLowerCase and
 * toUpperCase(Locale.ROOT) give them, which may be longer than it ("ß" ->
 * "SS"). Generated into ad_casemap.c by GenCaseMap.java; sorted by cp, BMP
 * characters over 0x7F whose forms differ from themselves only. Beyond the
 * BMP a character matches itself only: event-ruler folds per UTF-16 unit,
 * splits it into two lone surrogates and encodes each as '?', so its
 * pattern matches "??" -- a flaw this module deliberately does not copy. */
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
