/* The floor under any gateway that hands requests to a worker process: one epoll loop that
 * answers `GET /refuse` with a 401 at once and forwards `GET /accept` as a 600-byte frame
 * (about the size of edgefn's request frame) to a worker it forked, over a Unix socket,
 * answering (with the same fixed 200 the worker sends) once the worker's reply is read. No parsing, no allocation, no timers, no logging:
 * its CPU per request is the kernel's share (wake-ups, context switches, socket calls) of
 * each path, and accepted/refusal its lowest possible ratio on this machine. The worker is
 * SCHED_BATCH like edgefn's, so it runs when the server sleeps, as edgefn's workers do.
 *
 *   floor PORT [WORK_US TOUCH_KB]
 *
 * With WORK_US and TOUCH_KB the worker, for each frame, writes one byte in every cache line
 * of a TOUCH_KB buffer and then spins until WORK_US have passed since it began the frame: a
 * handler's CPU time and its run's footprint in the caches the server returns to, as an
 * interpreter's worker has them. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define FRAME 600
static const char REFUSED[] =
    "HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\ncontent-length: 24\r\n\r\n"
    "{\"error\":\"unauthorized\"}";
static const char REPLY[] = "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok";
#define REPLY_LEN (sizeof REPLY - 1)

static long work_ns;
static size_t touch_len;
static unsigned char *touch;

static long elapsed_ns(const struct timespec *from) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (t.tv_sec - from->tv_sec) * 1000000000L + (t.tv_nsec - from->tv_nsec);
}

/* A handler's run: its footprint in the caches, then its CPU time. */
static void handle(void) {
  struct timespec start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (size_t i = 0; i < touch_len; i += 64) touch[i]++;
  while (elapsed_ns(&start) < work_ns) {
  }
}

/* One reply per whole frame received: frames sent back to back may arrive in one read.
 * The replies to one read leave in one write, as edgefn's Python worker sends the answers
 * it holds before it waits again. */
static void worker(int fd) {
  struct sched_param sp = {0};
  sched_setscheduler(0, SCHED_BATCH, &sp);
  char buf[16384];
  static char replies[(sizeof buf / FRAME + 1) * REPLY_LEN];
  long pending = 0;
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) _exit(0);
    size_t out = 0;
    for (pending += n; pending >= FRAME; pending -= FRAME) {
      handle();
      memcpy(replies + out, REPLY, REPLY_LEN);
      out += REPLY_LEN;
    }
    if (out && write(fd, replies, out) != (ssize_t)out) _exit(1);
  }
}

int main(int argc, char **argv) {
  if (argc != 2 && argc != 4) {
    fprintf(stderr, "usage: floor PORT [WORK_US TOUCH_KB]\n");
    return 2;
  }
  if (argc == 4) {
    work_ns = atol(argv[2]) * 1000L;
    touch_len = (size_t)atol(argv[3]) * 1024;
    if (touch_len && !(touch = calloc(touch_len, 1))) return perror("calloc"), 1;
  }
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return perror("socketpair"), 1;
  if (fork() == 0) {
    close(sv[0]);
    worker(sv[1]);
  }
  close(sv[1]);
  fcntl(sv[0], F_SETFL, O_NONBLOCK);
  static char frame[FRAME];
  memset(frame, 'x', sizeof frame);
  int one = 1, ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[1])),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (bind(ls, (void *)&addr, sizeof addr) != 0 || listen(ls, 1024) != 0) return perror("listen"), 1;
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = ls};
  epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
  ev.data.fd = sv[0];
  epoll_ctl(ep, EPOLL_CTL_ADD, sv[0], &ev);
  /* Connections waiting for the worker, in the order their frames were sent. */
  static int waiting[1 << 16];
  unsigned head = 0, tail = 0;
  long partial = 0;
  static char buf[16384];
  for (;;) {
    struct epoll_event evs[64];
    int n = epoll_wait(ep, evs, 64, -1);
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      if (fd == ls) {
        int c;
        while ((c = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
          setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          struct epoll_event ce = {.events = EPOLLIN, .data.fd = c};
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
        }
      } else if (fd == sv[0]) {
        ssize_t r = read(sv[0], buf, sizeof buf);
        for (partial += r > 0 ? r : 0; partial >= (long)REPLY_LEN && head != tail; partial -= REPLY_LEN)
          send(waiting[head++ & 0xffff], REPLY, REPLY_LEN, MSG_NOSIGNAL);
      } else {
        ssize_t r = recv(fd, buf, sizeof buf, 0);
        if (r <= 0) {
          close(fd);
        } else if (r >= 11 && memcmp(buf, "GET /accept", 11) == 0 && tail - head < 0xffff) {
          waiting[tail++ & 0xffff] = fd;
          if (write(sv[0], frame, sizeof frame) != FRAME) return perror("worker"), 1;
        } else {
          send(fd, REFUSED, sizeof REFUSED - 1, MSG_NOSIGNAL);
        }
      }
    }
  }
}
