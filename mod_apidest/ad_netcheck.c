#include <string.h>
#include <netinet/in.h>

#include "ad_netcheck.h"

typedef struct {
    unsigned int net; /* host order */
    int bits;
    const char *name;
} v4_range_t;

static const v4_range_t v4_ranges[] = {
    {0x00000000u, 8, "unspecified"},    /* 0.0.0.0/8 "this network" */
    {0x0a000000u, 8, "private"},        /* 10/8 */
    {0x64400000u, 10, "shared"},        /* 100.64/10 carrier-grade NAT */
    {0x7f000000u, 8, "loopback"},       /* 127/8 */
    {0xa9fe0000u, 16, "link-local"},    /* 169.254/16 incl. metadata */
    {0xac100000u, 12, "private"},       /* 172.16/12 */
    {0xc0000000u, 24, "reserved"},      /* 192.0.0/24 IETF protocol */
    {0xc0000200u, 24, "documentation"}, /* 192.0.2/24 TEST-NET-1 */
    {0xc0a80000u, 16, "private"},       /* 192.168/16 */
    {0xc6120000u, 15, "benchmarking"},  /* 198.18/15 */
    {0xc6336400u, 24, "documentation"}, /* 198.51.100/24 TEST-NET-2 */
    {0xcb007100u, 24, "documentation"}, /* 203.0.113/24 TEST-NET-3 */
    {0xe0000000u, 4, "multicast"},      /* 224/4 */
    {0xf0000000u, 4, "reserved"},       /* 240/4 incl. broadcast */
};

static const char *classify_v4(unsigned int a)
{
    size_t i;
    for (i = 0; i < sizeof(v4_ranges) / sizeof(v4_ranges[0]); i++) {
        unsigned int mask = 0xffffffffu << (32 - v4_ranges[i].bits);
        if ((a & mask) == v4_ranges[i].net) {
            return v4_ranges[i].name;
        }
    }
    return NULL;
}

static unsigned int v4_at(const unsigned char *b)
{
    return ((unsigned int)b[0] << 24) | ((unsigned int)b[1] << 16) | ((unsigned int)b[2] << 8) |
           b[3];
}

static int all_zero(const unsigned char *b, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        if (b[i]) {
            return 0;
        }
    }
    return 1;
}

static const char *classify_v6(const unsigned char *b)
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const unsigned char siit[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0};
    static const unsigned char nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
    static const unsigned char nat64_local[6] = {0, 0x64, 0xff, 0x9b, 0, 0x01};

    if (all_zero(b, 16)) {
        return "unspecified";
    }
    if (all_zero(b, 15) && b[15] == 1) {
        return "loopback";
    }
    if (!memcmp(b, mapped, 12) || !memcmp(b, siit, 12) || !memcmp(b, nat64, 12) ||
        all_zero(b, 12)) {
        /* ::ffff:a.b.c.d, ::ffff:0:a.b.c.d (SIIT), 64:ff9b::a.b.c.d and
         * ::a.b.c.d reach IPv4. */
        return classify_v4(v4_at(b + 12));
    }
    if (!memcmp(b, nat64_local, 6)) {
        return "private"; /* 64:ff9b:1::/48, a network's own NAT64 (RFC 8215) */
    }
    if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0 && b[3] == 0) {
        /* Teredo 2001::/32: the client's IPv4 address, inverted, ends it. */
        return classify_v4(~v4_at(b + 12));
    }
    if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8) {
        return "documentation"; /* 2001:db8::/32 */
    }
    if (b[0] == 0x20 && b[1] == 0x02) {
        return classify_v4(v4_at(b + 2)); /* 6to4 2002:AABB:CCDD:: */
    }
    if ((b[0] & 0xfe) == 0xfc) {
        return "private"; /* fc00::/7 unique local */
    }
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) {
        return "link-local"; /* fe80::/10 */
    }
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) {
        return "site-local"; /* fec0::/10, deprecated */
    }
    if (b[0] == 0xff) {
        return "multicast";
    }
    if (b[0] == 0x01 && all_zero(b + 1, 7)) {
        return "discard"; /* 100::/64 */
    }
    return NULL;
}

const char *ad_netcheck_classify(const struct sockaddr *addr)
{
    if (addr->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)addr;
        return classify_v4(ntohl(in->sin_addr.s_addr));
    }
    if (addr->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)addr;
        return classify_v6(in6->sin6_addr.s6_addr);
    }
    return "non-IP";
}
