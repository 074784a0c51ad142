/* libFuzzer target for the redis wire follower (driver: db_fuzz.h). */
#include "proto/redis/redis.h"

#define FUZZ_SESSION struct redis_session
#define FUZZ_INIT(s, b) ((void)(b), redis__init(s))
#define FUZZ_FEED redis__feed
#define FUZZ_FAIL redis__fail
#define FUZZ_PENDING redis__pending
#define FUZZ_PENDING_MAX REDIS_PENDING
#include "db_fuzz.h"
