/* The agent: every module wired from the configuration, and the event loop. */
#ifndef SONDE_AGENT_H
#define SONDE_AGENT_H

#include "config.h"

struct agent;

/* Builds and attaches everything. On error *out is still set (free it with
 * agent__close) and the negative errno says why; -EINVAL: bad configuration. */
int agent__open(struct agent **out, const struct config *c);
/* Runs until SIGINT/SIGTERM, then drains every ring. 0 or a negative errno. */
int agent__run(struct agent *a);
void agent__close(struct agent *a);

#endif
