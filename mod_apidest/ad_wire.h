/* The protocol between httpd children and apidestd over the Unix socket:
 * framed messages (magic, type, length, payload), one request and one reply
 * per exchange; a child keeps its connection for the next exchange. */
#ifndef AD_WIRE_H
#define AD_WIRE_H

#include <apr_network_io.h>
#include <apr_tables.h>

#define AD_WIRE_MAGIC 0x41445731u /* "ADW1" */
/* Largest payload either side accepts: a full PutEvents of records. */
#define AD_WIRE_MAX_PAYLOAD (64u * 1024 * 1024)

typedef enum {
    AD_MSG_STORE = 1,      /* child -> daemon: records to store */
    AD_MSG_STORE_ACK = 2,  /* daemon -> child: u32 status, text */
    AD_MSG_ADMIN = 3,      /* child -> daemon: JSON admin request */
    AD_MSG_ADMIN_REPLY = 4 /* daemon -> child: u32 http status, JSON */
} ad_msg_type_t;

/* Status values in a STORE_ACK. */
#define AD_ACK_STORED 0
#define AD_ACK_FAILED 1 /* nothing of the message was stored */

#define AD_WIRE_HEADER_LEN 12

/* A frame's header: APR_EINVAL when it is not ours or too long. */
apr_status_t ad_wire_parse_header(const unsigned char *hdr, apr_uint32_t *type, apr_uint32_t *len);

/* The first n bytes read of a frame (n >= AD_WIRE_HEADER_LEN): its header,
 * as ad_wire_parse_header(), and APR_EINVAL too when the bytes run past the
 * frame: in request and reply, a peer that did not wait for its answer. */
apr_status_t ad_wire_parse_start(const char *buf, apr_size_t n, apr_uint32_t *type,
                                 apr_uint32_t *len);

/* One frame; APR_EINVAL (nothing sent) past AD_WIRE_MAX_PAYLOAD. */
apr_status_t ad_wire_send(apr_socket_t *s, apr_uint32_t type, const char *payload, apr_size_t len);

/* One frame from a blocking socket. It reads up to AD_WIRE_FIRST_READ bytes
 * at once, so it is for request and reply only: bytes past the frame mean a
 * peer that did not wait for its answer (APR_EINVAL). */
#define AD_WIRE_FIRST_READ 256
apr_status_t ad_wire_recv(apr_socket_t *s, apr_pool_t *p, apr_uint32_t *type, char **payload,
                          apr_size_t *len);

/* Records (ad_blob_t of ad_ingest.h) in one STORE payload: a u32 count,
 * then each record as a u32 length and its bytes. */

/* The payload's length; APR_ENOSPC past AD_WIRE_MAX_PAYLOAD. */
apr_status_t ad_wire_blobs_size(const apr_array_header_t *blobs, apr_size_t *len);

/* The frame, written from the records' own buffers (not changed, so the
 * same blobs can be sent again); p holds only the small array of parts.
 * APR_ENOSPC, nothing sent, past AD_WIRE_MAX_PAYLOAD. */
apr_status_t ad_wire_send_blobs(apr_socket_t *s, apr_pool_t *p, apr_uint32_t type,
                                const apr_array_header_t *blobs);

/* The records of a payload read, pointing into it. */
apr_status_t ad_wire_unpack_blobs(apr_pool_t *p, const char *buf, apr_size_t len,
                                  apr_array_header_t **blobs);

/* A reply that is a status word plus text (STORE_ACK, ADMIN_REPLY). */
apr_status_t ad_wire_pack_reply(apr_pool_t *p, apr_uint32_t status, const char *text,
                                apr_size_t text_len, char **buf, apr_size_t *len);
apr_status_t ad_wire_unpack_reply(const char *buf, apr_size_t len, apr_uint32_t *status,
                                  const char **text, apr_size_t *text_len);

#endif
