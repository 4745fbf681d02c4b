/* Egress address policy: which addresses a destination may not reach unless
 * it allows private endpoints. Checked on the address actually connected to. */
#ifndef AD_NETCHECK_H
#define AD_NETCHECK_H

#include <sys/socket.h>

/* NULL when addr is a public unicast address; otherwise a short name of the
 * class that makes it non-public ("loopback", "private", "link-local", ...).
 * IPv4-mapped, SIIT, IPv4-compatible, NAT64, 6to4 and Teredo IPv6 forms are
 * judged by the IPv4 address they carry; documentation ranges are refused. */
const char *ad_netcheck_classify(const struct sockaddr *addr);

#endif
