/* sonde: configuration → agent → run. */
#include <signal.h>
#include <stddef.h>
#include <errno.h>

#include "agent.h"
#include "config.h"
#include "util/log.h"

int main(int argc, char **argv)
{
	struct config cfg = { 0 };
	struct agent *a = NULL;
	sigset_t mask;
	int err;

	if (config__parse(&cfg, argc, argv))
		return 2;
	/* Signals are read from a signalfd in the loop, so block them first. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);

	err = agent__open(&a, &cfg);
	if (err == -EINVAL) {
		agent__close(a);
		return 2;
	}
	if (!err)
		err = agent__run(a);
	agent__close(a);
	log_info("sonde stopped", LI("status", err));
	return err ? 1 : 0;
}
