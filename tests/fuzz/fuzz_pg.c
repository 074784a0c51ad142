/* libFuzzer target for the pg wire follower (driver: db_fuzz.h). */
#include "proto/pg/pg.h"

#define FUZZ_SESSION struct pg_session
#define FUZZ_INIT(s, b) pg__init((s), (b) & 1)
#define FUZZ_FEED pg__feed
#define FUZZ_FAIL pg__fail
#define FUZZ_PENDING pg__pending
#define FUZZ_PENDING_MAX PG_PENDING
#include "db_fuzz.h"
