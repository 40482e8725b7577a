/* test_journal.c - src/journal: the packed request ring gives back exactly
 * what was added, keeps the newest entries, drops secrets when told to. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ndesmock/journal.h"

/* A zeroed entry filled the way the server fills one; i varies every field. */
static void fill(struct journal_entry *e, int i)
{
    memset(e, 0, sizeof(*e));
    e->time = 1700000000.25 + i;
    snprintf(e->method, sizeof(e->method), "POST");
    snprintf(e->path, sizeof(e->path), "/certsrv/mscep/mscep.dll");
    snprintf(e->query, sizeof(e->query), "operation=PKIOperation&n=%d", i);
    snprintf(e->operation, sizeof(e->operation), "PKIOperation");
    snprintf(e->peer, sizeof(e->peer), "127.0.0.%d", i % 250 + 1);
    snprintf(e->user_agent, sizeof(e->user_agent), "client/%d", i);
    e->status = 200;
    e->substatus = i % 3;
    e->bytes = 2500 + (size_t)i;
    e->duration_ms = 1.5 * i;
    e->has_pki = 1;
    e->message_type = 19;
    snprintf(e->transaction_id, sizeof(e->transaction_id), "tid-%d", i);
    snprintf(e->challenge, sizeof(e->challenge), "secret-%d", i);
    e->has_challenge = 1;
    e->pki_status = 0;
    e->fail_info = -1;
    e->hresult = -2146893819L;
    e->key_bits = 2048;
    /* a field filled to the last byte, and bytes that are zero in the middle of a run */
    memset(e->sans, 'x', sizeof(e->sans) - 1);
    e->raw_len = (size_t)(i % 7);
    e->raw = malloc(e->raw_len ? e->raw_len : 1);
    cr_assert_not_null(e->raw);
    memset(e->raw, 'a' + i % 26, e->raw_len);
}

struct seen {
    int n;
    uint64_t ids[16];
    struct journal_entry e[16];
};

static void collect(const struct journal_entry *e, void *arg)
{
    struct seen *s = arg;

    cr_assert_lt(s->n, 16);
    s->ids[s->n] = e->id;
    s->e[s->n] = *e;
    s->e[s->n].raw = NULL; /* borrowed from the ring: only valid during the call */
    s->n++;
}

/* Everything but id and raw compared byte for byte (both entries start zeroed). */
static void expect_same(const struct journal_entry *got, const struct journal_entry *want)
{
    struct journal_entry a = *got, b = *want;

    a.id = b.id = 0;
    a.raw = b.raw = NULL;
    cr_assert(memcmp(&a, &b, sizeof(a)) == 0, "entry '%s' came back different", want->query);
}

Test(journal, entries_come_back_as_added_newest_kept)
{
    struct journal *j = journal_new(4, 64, 1);
    struct journal_entry want[6], e;
    struct seen s = {0};
    int i;

    cr_assert_not_null(j);
    for (i = 0; i < 6; i++) {
        fill(&e, i);
        want[i] = e;
        want[i].raw = NULL;
        journal_add(j, &e);
        cr_assert_null(e.raw, "journal_add takes the raw bytes");
    }
    journal_each(j, collect, &s);
    cr_assert_eq(s.n, 4, "a ring of 4 keeps 4, got %d", s.n);
    for (i = 0; i < 4; i++) {
        cr_assert_eq(s.ids[i], (uint64_t)(i + 3), "oldest first: ids 3..6");
        expect_same(&s.e[i], &want[i + 2]);
        cr_assert_eq(s.e[i].raw_len, (size_t)((i + 2) % 7));
    }
    {
        uint8_t *raw = NULL;
        size_t len = 99;
        cr_assert_eq(journal_raw(j, 6, &raw, &len), 0);
        cr_assert_eq(len, 5u);
        cr_assert(memcmp(raw, "fffff", 5) == 0);
        free(raw);
        cr_assert_eq(journal_raw(j, 2, &raw, &len), -1, "entry 2 fell out of the ring");
    }
    journal_clear(j);
    s.n = 0;
    journal_each(j, collect, &s);
    cr_assert_eq(s.n, 0);
    journal_free(j);
}

Test(journal, secrets_dropped_when_not_kept)
{
    struct journal *j = journal_new(2, 64, 0);
    struct journal_entry e;
    struct seen s = {0};

    fill(&e, 1);
    journal_add(j, &e);
    journal_each(j, collect, &s);
    cr_assert_eq(s.n, 1);
    cr_assert_str_eq(s.e[0].challenge, "");
    cr_assert_eq(s.e[0].has_challenge, 0);
    cr_assert_str_eq(s.e[0].transaction_id, "tid-1");
    journal_free(j);
}

Test(journal, entry_with_no_zero_bytes_survives)
{
    /* the worst case for the packing: every byte non-zero, or every other byte zero */
    struct journal *j = journal_new(2, 64, 1);
    struct journal_entry e, want;
    struct seen s = {0};
    size_t k;

    memset(&e, 0x5a, sizeof(e));
    e.raw = NULL;
    e.raw_len = 0;
    want = e;
    journal_add(j, &e);
    for (k = 0; k < sizeof(e); k++)
        ((uint8_t *)&e)[k] = k % 2 ? 0 : 0x11;
    e.raw = NULL;
    e.raw_len = 0;
    journal_add(j, &e);
    journal_each(j, collect, &s);
    cr_assert_eq(s.n, 2);
    expect_same(&s.e[0], &want);
    expect_same(&s.e[1], &e);
    journal_free(j);
}

Test(journal, zero_runs_of_every_length_survive)
{
    /* runs of zeros from 1 to 600 bytes (across the 8-byte scan and the 255
     * cap), separated by literal runs of 1 to 9 bytes, at every offset; the
     * entry ends in a zero run in one round and in a literal in the next */
    struct journal *j = journal_new(2, 64, 1);
    struct journal_entry e;
    struct seen s;
    uint8_t *b = (uint8_t *)&e;
    size_t run, k, lit;

    for (run = 1; run <= 600; run += (run < 20 || (run > 245 && run < 265) ? 1 : 37)) {
        for (lit = 1; lit <= 9; lit += 4) {
            memset(&e, 0, sizeof(e));
            k = (run * 7 + lit) % 13; /* start offset */
            while (k < sizeof(e)) {
                size_t i;
                for (i = 0; i < lit && k < sizeof(e); i++, k++)
                    b[k] = (uint8_t)(0x80 + (k & 0x3f));
                k += run;
            }
            if (run % 2)
                b[sizeof(e) - 1] = 0x7f;
            e.raw = NULL;
            e.raw_len = 0;
            {
                struct journal_entry want = e;
                memset(&s, 0, sizeof(s));
                journal_add(j, &e);
                journal_each(j, collect, &s);
                cr_assert_geq(s.n, 1);
                expect_same(&s.e[s.n - 1], &want);
            }
        }
    }
    journal_free(j);
}
