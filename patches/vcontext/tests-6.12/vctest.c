/*
 * vcontext smoke test: prints one "KTRACK-TEST <name> pass|fail [why]" line
 * per check and exits non-zero if any check failed.
 *
 * The host process (context 0) forks a child that enters context 5; the
 * child forks a grandchild that must inherit context 5. The child must not
 * see or signal the host process (nor init), but must see and signal the
 * grandchild; the host must see and signal everything.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* include/uapi/linux/prctl.h of vcontext 0.2 for Linux 6.12 */
#define PR_SET_VCONTEXT 74
#define PR_GET_VCONTEXT 75

#define CTX 5

static int failures;

static void report(const char *name, int ok, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#include <stdarg.h>
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

static long get_ctx(void)
{
	return prctl(PR_GET_VCONTEXT, 0, 0, 0, 0);
}

/* The "XID:" value of /proc/<pid>/vinfo, -1 if unreadable. */
static long read_vinfo(const char *pid)
{
	char path[64], line[128];
	long xid = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%s/vinfo", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "XID: %ld", &xid) == 1)
			break;
	fclose(f);
	return xid;
}

/* Is <pid> listed by readdir("/proc")? */
static int listed_in_proc(pid_t pid)
{
	char want[32];
	struct dirent *d;
	int found = 0;
	DIR *dir = opendir("/proc");

	if (!dir)
		return -1;
	snprintf(want, sizeof(want), "%d", (int)pid);
	while ((d = readdir(dir)))
		if (!strcmp(d->d_name, want))
			found = 1;
	closedir(dir);
	return found;
}

static int proc_entry_exists(pid_t pid)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	return stat(path, &st) == 0;
}

/* Runs in context CTX; host is the pid of the host-context parent. */
static void in_context(pid_t host, int ready_fd, int go_fd)
{
	int gc_pipe[2], status, err;
	long r, xid;
	pid_t gc;
	char c;

	r = prctl(PR_SET_VCONTEXT, CTX, 0, 0, 0);
	report("set-context", r == 0 && get_ctx() == CTX,
	       "prctl(PR_SET_VCONTEXT, %d) = %ld (%s), PR_GET_VCONTEXT = %ld",
	       CTX, r, r ? strerror(errno) : "ok", get_ctx());

	errno = 0;
	r = prctl(PR_SET_VCONTEXT, CTX + 1, 0, 0, 0);
	report("set-context-once", r == -1 && errno == EPERM && get_ctx() == CTX,
	       "second PR_SET_VCONTEXT = %ld (%s), context now %ld", r,
	       strerror(errno), get_ctx());

	xid = read_vinfo("self");
	report("proc-self-vinfo", xid == CTX, "/proc/self/vinfo XID = %ld", xid);

	if (pipe(gc_pipe))
		exit(99);
	gc = fork();
	if (gc == 0) {
		char v = (char)get_ctx();

		if (write(gc_pipe[1], &v, 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	if (read(gc_pipe[0], &c, 1) != 1)
		c = -1;
	report("fork-inherits-context", gc > 0 && c == CTX,
	       "grandchild PR_GET_VCONTEXT = %d", c);

	/* the host process and init live in context 0 */
	errno = 0;
	r = proc_entry_exists(host);
	err = errno;
	report("hidden-other-context-lookup",
	       !r && err == ENOENT && !proc_entry_exists(1),
	       "stat /proc/%d/status: %s", (int)host,
	       r ? "found" : strerror(err));
	report("hidden-other-context-readdir",
	       listed_in_proc(host) == 0 && listed_in_proc(1) == 0,
	       "host pid %d listed: %d, pid 1 listed: %d", (int)host,
	       listed_in_proc(host), listed_in_proc(1));
	errno = 0;
	r = kill(host, 0);
	report("signal-other-context-denied", r == -1 && errno == EPERM,
	       "kill(%d, 0) = %ld (%s)", (int)host, r, strerror(errno));
	errno = 0;
	r = kill(1, SIGCHLD);
	report("signal-init-denied", r == -1 && errno == EPERM,
	       "kill(1, SIGCHLD) = %ld (%s)", r, strerror(errno));

	/* ... but its own context is all there */
	report("visible-own-context",
	       proc_entry_exists(gc) && listed_in_proc(gc) == 1 &&
		       listed_in_proc(getpid()) == 1,
	       "grandchild %d exists: %d listed: %d", (int)gc,
	       proc_entry_exists(gc), listed_in_proc(gc));
	r = kill(gc, SIGTERM);
	status = 0;
	waitpid(gc, &status, 0);
	report("signal-own-context",
	       r == 0 && WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM,
	       "kill(%d, SIGTERM) = %ld, status 0x%x", (int)gc, r, status);

	/* let the host look at us, then leave */
	if (write(ready_fd, "r", 1) != 1 || read(go_fd, &c, 1) != 1)
		exit(98);
	exit(failures);
}

int main(void)
{
	int ready[2], go[2], status;
	char pid[32], c;
	pid_t host = getpid(), child;
	long r, xid;

	setvbuf(stdout, NULL, _IOLBF, 0);
	r = get_ctx();
	report("host-context", r == 0, "PR_GET_VCONTEXT = %ld%s%s", r,
	       r < 0 ? " " : "", r < 0 ? strerror(errno) : "");
	xid = read_vinfo("self");
	report("host-vinfo", xid == 0, "/proc/self/vinfo XID = %ld", xid);
	errno = 0;
	r = prctl(PR_SET_VCONTEXT, 0, 0, 0, 0);
	report("set-host-context-rejected", r == -1 && errno == EINVAL,
	       "PR_SET_VCONTEXT 0 = %ld (%s)", r, strerror(errno));

	/* cache the dentries the child must not see through */
	proc_entry_exists(host);
	proc_entry_exists(1);

	if (pipe(ready) || pipe(go))
		return 2;
	child = fork();
	if (child == 0)
		in_context(host, ready[1], go[0]);
	if (read(ready[0], &c, 1) != 1) {
		report("child-ran", 0, "child died before the host checks");
		waitpid(child, &status, 0);
		return 1;
	}
	snprintf(pid, sizeof(pid), "%d", (int)child);
	xid = read_vinfo(pid);
	report("host-sees-child-vinfo", xid == CTX, "/proc/%s/vinfo XID = %ld",
	       pid, xid);
	report("host-sees-all-contexts",
	       listed_in_proc(child) == 1 && kill(child, 0) == 0,
	       "child %s listed: %d", pid, listed_in_proc(child));
	if (write(go[1], "g", 1) != 1)
		return 2;
	waitpid(child, &status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		failures++;
	printf("vctest: %d failure(s)\n", failures);
	return failures ? 1 : 0;
}
