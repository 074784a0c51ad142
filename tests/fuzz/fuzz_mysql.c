/* libFuzzer target for the mysql wire follower (driver: db_fuzz.h). */
#include "proto/mysql/mysql.h"

#define FUZZ_SESSION struct mysql_session
#define FUZZ_INIT(s, b) mysql__init((s), (b) & 1)
#define FUZZ_FEED mysql__feed
#define FUZZ_FAIL mysql__fail
#define FUZZ_PENDING mysql__pending
#define FUZZ_PENDING_MAX 1
#include "db_fuzz.h"
