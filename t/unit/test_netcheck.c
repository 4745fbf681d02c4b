/* The egress address classifier, judged on addresses alone: no connection
 * is ever made. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "ad_netcheck.h"
#include "unit_run.h"

static const char *classify(const char *text)
{
    struct sockaddr_in in4;
    struct sockaddr_in6 in6;

    memset(&in4, 0, sizeof(in4));
    memset(&in6, 0, sizeof(in6));
    if (inet_pton(AF_INET, text, &in4.sin_addr) == 1) {
        in4.sin_family = AF_INET;
        return ad_netcheck_classify((struct sockaddr *)&in4);
    }
    ck_assert_msg(inet_pton(AF_INET6, text, &in6.sin6_addr) == 1, "bad literal %s", text);
    in6.sin6_family = AF_INET6;
    return ad_netcheck_classify((struct sockaddr *)&in6);
}

static void refused(const char *addr, const char *cls)
{
    const char *got = classify(addr);
    ck_assert_msg(got != NULL, "%s should be refused", addr);
    ck_assert_msg(!strcmp(got, cls), "%s: expected %s, got %s", addr, cls, got);
}

static void allowed(const char *addr)
{
    const char *got = classify(addr);
    ck_assert_msg(got == NULL, "%s should be public, got %s", addr, got);
}

START_TEST(ipv4_ranges)
{
    refused("10.0.0.1", "private");
    refused("10.255.255.255", "private");
    refused("172.16.0.1", "private");
    refused("172.31.255.254", "private");
    allowed("172.32.0.1");
    allowed("172.15.255.255");
    refused("192.168.1.1", "private");
    refused("169.254.169.254", "link-local");
    refused("169.254.0.1", "link-local");
    refused("100.64.0.1", "shared");
    refused("100.127.255.255", "shared");
    allowed("100.128.0.1");
    refused("127.0.0.1", "loopback");
    refused("127.1.2.3", "loopback");
    refused("0.0.0.0", "unspecified");
    refused("0.1.2.3", "unspecified");
    refused("224.0.0.1", "multicast");
    refused("239.255.255.250", "multicast");
    refused("255.255.255.255", "reserved");
    refused("240.0.0.1", "reserved");
    refused("192.0.2.1", "documentation");
    refused("198.51.100.7", "documentation");
    refused("203.0.113.255", "documentation");
    allowed("203.0.114.1");
    allowed("8.8.8.8");
    allowed("1.1.1.1");
    allowed("93.184.216.34");
}
END_TEST

START_TEST(ipv6_ranges)
{
    refused("::", "unspecified");
    refused("::1", "loopback");
    refused("fc00::1", "private");
    refused("fd12:3456::1", "private");
    refused("fe80::1", "link-local");
    refused("febf::1", "link-local");
    refused("ff02::1", "multicast");
    allowed("2001:4860:4860::8888");
    allowed("2606:4700::1111");
}
END_TEST

START_TEST(ipv6_carrying_ipv4)
{
    /* mapped, NAT64, IPv4-compatible and 6to4 forms hide IPv4 targets */
    refused("::ffff:127.0.0.1", "loopback");
    refused("::ffff:10.1.2.3", "private");
    refused("::ffff:169.254.169.254", "link-local");
    refused("64:ff9b::10.0.0.1", "private");
    refused("64:ff9b::a9fe:a9fe", "link-local");
    refused("64:ff9b::127.0.0.1", "loopback");
    refused("::127.0.0.1", "loopback");
    refused("2002:0a00:0001::1", "private");
    refused("2002:a9fe:a9fe::1", "link-local");
    refused("::ffff:0:127.0.0.1", "loopback");
    refused("::ffff:0:10.0.0.1", "private");
    refused("64:ff9b:1::8.8.8.8", "private");
    refused("64:ff9b:1:ffff::1", "private");
    /* Teredo: 127.0.0.1 inverted is 80ff:fffe */
    refused("2001:0:4136:e378:8000:63bf:80ff:fffe", "loopback");
    allowed("2001:0:4136:e378:8000:63bf:f7f7:f7f7"); /* 8.8.8.8 */
    refused("2001:db8::1", "documentation");
    allowed("::ffff:8.8.8.8");
    allowed("::ffff:0:8.8.8.8");
    allowed("64:ff9b::8.8.8.8");
}
END_TEST

START_TEST(non_ip_family)
{
    struct sockaddr sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_family = AF_UNIX;
    ck_assert_str_eq(ad_netcheck_classify(&sa), "non-IP");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("netcheck");
    TCase *tc = tcase_create("classify");

    tcase_add_test(tc, ipv4_ranges);
    tcase_add_test(tc, ipv6_ranges);
    tcase_add_test(tc, ipv6_carrying_ipv4);
    tcase_add_test(tc, non_ip_family);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
