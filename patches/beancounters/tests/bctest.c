/*
 * beancounters smoke test: prints one "KTRACK-TEST <name> pass|fail [why]"
 * line per check and exits non-zero if any check failed.
 *
 * The host (beancounter 0) sets limits through /proc/user_beancounters,
 * then forks children that join beancounters 7 (numproc limit 3) and
 * 8 (numfile limit 4) and run into those limits.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* include/uapi/linux/prctl.h of the patched kernel (same in every version) */
#define PR_SET_BEANCOUNTER 0x55420001
#define PR_GET_BEANCOUNTER 0x55420002

#define PROC_BC "/proc/user_beancounters"
#define PROC_BC_ID 7
#define PROC_LIMIT 3
#define FILE_BC_ID 8
#define FILE_LIMIT 4

struct counter {
	long held, maxheld, limit, failcnt;
};

static int failures;

static void report(const char *name, int ok, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void report(const char *name, int ok, const char *fmt, ...)
{
	char msg[256] = "";
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	printf("KTRACK-TEST %s %s%s%s\n", name, ok ? "pass" : "fail",
	       msg[0] ? " " : "", msg);
	fflush(stdout);
	if (!ok)
		failures++;
}

/*
 * Read the counter of (id, resource) from /proc/user_beancounters.
 * Returns 0 when found, -1 otherwise.
 */
static int read_counter(unsigned int id, const char *resource,
			struct counter *out)
{
	char line[256], res[32];
	unsigned int cur = ~0u, uid;
	int found = -1, n;
	FILE *f = fopen(PROC_BC, "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		struct counter c;
		char *p = line;

		if (sscanf(line, " %u:%n", &uid, &n) == 1) {
			cur = uid;
			p = line + n;
		} else if (strchr(line, ':')) {
			continue;	/* "Version:" */
		}
		if (sscanf(p, "%31s %ld %ld %ld %ld", res, &c.held, &c.maxheld,
			   &c.limit, &c.failcnt) == 5 &&
		    cur == id && !strcmp(res, resource)) {
			*out = c;
			found = 0;
		}
	}
	fclose(f);
	return found;
}

static int write_limit(unsigned int id, const char *resource, long limit)
{
	char buf[64];
	int fd = open(PROC_BC, O_WRONLY), n, ok;

	if (fd < 0)
		return -1;
	n = snprintf(buf, sizeof(buf), "%u %s %ld\n", id, resource, limit);
	ok = write(fd, buf, n) == n;
	close(fd);
	return ok ? 0 : -1;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Child in beancounter PROC_BC_ID: fork until refused; exit 0 if all ok */
static int numproc_child(void)
{
	pid_t kids[16];
	int n = 0, err = 0, i;
	long r;

	r = prctl(PR_SET_BEANCOUNTER, PROC_BC_ID, 0, 0, 0);
	report("join-beancounter",
	       r == 0 && prctl(PR_GET_BEANCOUNTER, 0, 0, 0, 0) == PROC_BC_ID,
	       "PR_SET_BEANCOUNTER %d = %ld (%s), now in %d", PROC_BC_ID, r,
	       r ? strerror(errno) : "ok",
	       prctl(PR_GET_BEANCOUNTER, 0, 0, 0, 0));
	errno = 0;
	r = prctl(PR_SET_BEANCOUNTER, PROC_BC_ID + 10, 0, 0, 0);
	report("join-beancounter-once", r == -1 && errno == EPERM,
	       "second PR_SET_BEANCOUNTER = %ld (%s)", r, strerror(errno));

	while (n < 16) {
		pid_t pid = fork();

		if (pid == 0) {
			pause();
			_exit(0);
		}
		if (pid < 0) {
			err = errno;
			break;
		}
		kids[n++] = pid;
	}
	/* this task counts too: PROC_LIMIT - 1 children fit */
	report("numproc-limit-fork-eagain", n == PROC_LIMIT - 1 && err == EAGAIN,
	       "%d forks succeeded (want %d), then: %s", n, PROC_LIMIT - 1,
	       err ? strerror(err) : "no failure");
	for (i = 0; i < n; i++)
		kill(kids[i], SIGKILL);
	for (i = 0; i < n; i++)
		waitpid(kids[i], NULL, 0);
	return failures;
}

/* Child in beancounter FILE_BC_ID: open until refused */
static int numfile_child(void)
{
	int n = 0, err = 0, fd;

	if (prctl(PR_SET_BEANCOUNTER, FILE_BC_ID, 0, 0, 0)) {
		report("numfile-limit-open-emfile", 0, "PR_SET_BEANCOUNTER: %s",
		       strerror(errno));
		return 1;
	}
	while (n < 64) {
		fd = open("/proc/self/status", O_RDONLY);
		if (fd < 0) {
			err = errno;
			break;
		}
		n++;
	}
	report("numfile-limit-open-emfile", n == FILE_LIMIT && err == EMFILE,
	       "%d opens succeeded (want %d), then: %s", n, FILE_LIMIT,
	       err ? strerror(err) : "no failure");
	errno = 0;
	fd = pipe((int[2]){ 0, 0 });
	report("numfile-limit-pipe-emfile", fd == -1 && errno == EMFILE,
	       "pipe() = %d (%s)", fd, strerror(errno));
	return failures;
}

static int run_child(int (*fn)(void))
{
	int status;
	pid_t pid = fork();

	if (pid == 0)
		_exit(fn());
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int main(void)
{
	struct counter c = { 0 }, c2 = { 0 };
	int r, i;

	setvbuf(stdout, NULL, _IOLBF, 0);

	r = read_counter(0, "numproc", &c) || read_counter(0, "numfile", &c2);
	report("proc-lists-host-resources", !r && c.held > 0 && c2.held > 0,
	       "host numproc held %ld, numfile held %ld", c.held, c2.held);
	report("host-beancounter", prctl(PR_GET_BEANCOUNTER, 0, 0, 0, 0) == 0,
	       "PR_GET_BEANCOUNTER = %d", prctl(PR_GET_BEANCOUNTER, 0, 0, 0, 0));

	r = write_limit(PROC_BC_ID, "numproc", PROC_LIMIT);
	i = read_counter(PROC_BC_ID, "numproc", &c);
	report("proc-write-limit", !r && !i && c.limit == PROC_LIMIT && c.held == 0,
	       "write %s, then beancounter %d %s, limit %ld held %ld",
	       r ? "failed" : "ok", PROC_BC_ID, i ? "missing" : "listed",
	       c.limit, c.held);
	errno = 0;
	r = write_limit(PROC_BC_ID, "nosuchresource", 1);
	report("proc-write-rejects-garbage", r == -1 && errno == EINVAL,
	       "write = %d (%s)", r, strerror(errno));

	/* numproc */
	r = run_child(numproc_child);
	if (r)
		failures++;
	/* the killed children are freed after an RCU grace period */
	for (i = 0; i < 50; i++) {
		if (!read_counter(PROC_BC_ID, "numproc", &c) && c.held == 0)
			break;
		sleep_ms(100);
	}
	r = read_counter(PROC_BC_ID, "numproc", &c);
	report("numproc-failcnt", !r && c.failcnt >= 1 && c.maxheld == PROC_LIMIT,
	       "held %ld maxheld %ld limit %ld failcnt %ld", c.held, c.maxheld,
	       c.limit, c.failcnt);
	report("numproc-released", c.held == 0, "held %ld after exit", c.held);

	/* numfile */
	write_limit(FILE_BC_ID, "numfile", FILE_LIMIT);
	r = run_child(numfile_child);
	if (r)
		failures++;
	for (i = 0; i < 50; i++) {
		if (!read_counter(FILE_BC_ID, "numfile", &c) && c.held == 0)
			break;
		sleep_ms(100);
	}
	r = read_counter(FILE_BC_ID, "numfile", &c);
	report("numfile-failcnt", !r && c.failcnt >= 2 && c.maxheld == FILE_LIMIT,
	       "held %ld maxheld %ld limit %ld failcnt %ld", c.held, c.maxheld,
	       c.limit, c.failcnt);
	report("numfile-released", c.held == 0, "held %ld after exit", c.held);

	/* the host beancounter is not limited by the others' limits */
	for (i = 0; i < 2 * PROC_LIMIT; i++) {
		pid_t pid = fork();

		if (pid == 0)
			_exit(0);
		if (pid < 0)
			break;
		waitpid(pid, NULL, 0);
	}
	report("host-unlimited", i == 2 * PROC_LIMIT,
	       "%d of %d host forks succeeded", i, 2 * PROC_LIMIT);
	printf("bctest: %d failure(s)\n", failures);
	return failures ? 1 : 0;
}
