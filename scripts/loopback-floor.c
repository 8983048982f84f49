/* The kernel's floor for a block change over loopback TCP: the cost of nothing but one
 * write() of a SetNewPrevHash-sized message (120 bytes) to each of N connections, and the
 * time until another process has read them all.
 *
 *   cc -O2 -o /tmp/loopback-floor scripts/loopback-floor.c && /tmp/loopback-floor 1000 7
 *
 * The writer (this process, one thread: WRITERS=2 splits the writes over two processes) and
 * the reader (a child process, one thread, epoll) are connected by N TCP connections with
 * TCP_NODELAY, as a pool and its miners are. Each round the writer takes a time stamp,
 * writes to every connection, and the reader reports when it has read all N. No encryption,
 * no encoding, no scheduling of tasks: a pool cannot do better on the same machine.
 * Prints per round the writer's time and the reader's last read, then the medians. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void die(const char *what) {
  perror(what);
  exit(1);
}

static void nodelay(int fd) {
  int one = 1;
  if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0) die("setsockopt");
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void write_all(const int *fds, int from, int to) {
  char msg[120];
  memset(msg, 7, sizeof msg);
  for (int i = from; i < to; i++)
    if (write(fds[i], msg, sizeof msg) != (ssize_t)sizeof msg) die("write");
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s CONNECTIONS ROUNDS\n", argv[0]);
    return 64;
  }
  int n = atoi(argv[1]), rounds = atoi(argv[2]);
  int writers = getenv("WRITERS") ? atoi(getenv("WRITERS")) : 1;
  if (n < 1 || rounds < 1 || writers < 1 || writers > 2) {
    fprintf(stderr, "CONNECTIONS and ROUNDS at least 1, WRITERS 1 or 2\n");
    return 64;
  }
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (ls < 0 || bind(ls, (void *)&a, sizeof a) < 0 || listen(ls, 4096) < 0 ||
      getsockname(ls, (void *)&a, &len) < 0)
    die("listen");
  int start[2], done[2];
  if (pipe(start) < 0 || pipe(done) < 0) die("pipe");
  pid_t reader = fork();
  if (reader < 0) die("fork");
  if (reader == 0) {
    int ep = epoll_create1(0);
    int *fds = malloc(n * sizeof(int));
    for (int i = 0; i < n; i++) {
      fds[i] = socket(AF_INET, SOCK_STREAM, 0);
      if (fds[i] < 0 || connect(fds[i], (void *)&a, sizeof a) < 0) die("connect");
      nodelay(fds[i]);
      struct epoll_event e = {.events = EPOLLIN, .data.u32 = i};
      if (epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &e) < 0) die("epoll_ctl");
    }
    char ready = 'r';
    if (write(done[1], &ready, 1) != 1) die("pipe");
    struct epoll_event ev[256];
    char buf[4096];
    for (int r = 0; r < rounds; r++) {
      double t0;
      if (read(start[0], &t0, sizeof t0) != sizeof t0) die("pipe");
      int got = 0;
      while (got < n) {
        int k = epoll_wait(ep, ev, 256, -1);
        for (int j = 0; j < k; j++)
          if (read(fds[ev[j].data.u32], buf, sizeof buf) > 0) got++;
      }
      double t1 = now_ms();
      if (write(done[1], &t1, sizeof t1) != sizeof t1) die("pipe");
    }
    exit(0);
  }
  int *fds = malloc(n * sizeof(int));
  for (int i = 0; i < n; i++) {
    fds[i] = accept(ls, 0, 0);
    if (fds[i] < 0) die("accept");
    nodelay(fds[i]);
  }
  char ready;
  if (read(done[0], &ready, 1) != 1) die("pipe");
  double *w = malloc(rounds * sizeof(double)), *l = malloc(rounds * sizeof(double));
  for (int r = 0; r < rounds; r++) {
    usleep(200000);
    double t0 = now_ms();
    if (write(start[1], &t0, sizeof t0) != sizeof t0) die("pipe");
    if (writers == 2) {
      pid_t half = fork();
      if (half == 0) {
        write_all(fds, n / 2, n);
        _exit(0);
      }
      write_all(fds, 0, n / 2);
      waitpid(half, 0, 0);
    } else {
      write_all(fds, 0, n);
    }
    w[r] = now_ms() - t0;
    double t1;
    if (read(done[0], &t1, sizeof t1) != sizeof t1) die("pipe");
    l[r] = t1 - t0;
    printf("round %d: writes took %.2f ms, last read after %.2f ms\n", r, w[r], l[r]);
  }
  waitpid(reader, 0, 0);
  qsort(w, rounds, sizeof(double), cmp);
  qsort(l, rounds, sizeof(double), cmp);
  printf("floor connections=%d writers=%d writes_ms=%.2f last_read_ms=%.2f\n", n, writers,
         w[rounds / 2], l[rounds / 2]);
  return 0;
}
