/* hello-http: the smallest useful container workload for the cluster tests, built here with
 * gcc -static (no base image, no registry download). Serves HTTP/1.0-style responses on $PORT
 * (default 8080): "hello from <hostname>" plus the request path, so a test can tell which pod
 * answered. One connection at a time is plenty for tests. Exits 0 on SIGTERM (pod deletion). */
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static void on_term(int sig) {
  (void)sig;
  _exit(0);
}

int main(void) {
  const char *port_env = getenv("PORT");
  int port = port_env ? atoi(port_env) : 8080;
  char host[256] = "unknown";
  gethostname(host, sizeof host - 1);
  signal(SIGTERM, on_term);
  signal(SIGINT, on_term);
  signal(SIGPIPE, SIG_IGN);

  int s = socket(AF_INET6, SOCK_STREAM, 0); /* dual-stack: also accepts IPv4 */
  int on = 1, off = 0;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
  struct sockaddr_in6 addr = {.sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_addr = in6addr_any};
  if (bind(s, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(s, 64) < 0) {
    perror("hello-http: bind/listen");
    return 1;
  }
  printf("hello-http: %s listening on :%d\n", host, port);
  fflush(stdout);

  for (;;) {
    int c = accept(s, NULL, NULL);
    if (c < 0)
      continue;
    struct timeval tv = {.tv_sec = 5};
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char req[2048] = {0};
    ssize_t n = recv(c, req, sizeof req - 1, 0);
    char path[512] = "/";
    if (n > 0)
      sscanf(req, "%*s %511s", path);
    char body[1024], resp[1400];
    int blen = snprintf(body, sizeof body, "hello from %s path %s\n", host, path);
    int rlen = snprintf(resp, sizeof resp,
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                        "Connection: close\r\n\r\n%s",
                        blen, body);
    send(c, resp, rlen, 0);
    close(c);
    printf("hello-http: served %s\n", path);
    fflush(stdout);
  }
}
