/*
 * clusterd's native helper: the few process calls Node does not expose. Built at install time
 * (scripts/build-native.mjs) against Node-API, so one build serves every Node version; clusterd
 * runs without it, with the fallbacks src/native.ts describes.
 *
 *   setpgid(pid, pgid)            -> 0 or -errno   a worker leads a process group of its own
 *                                                  without a session of its own (setsid would put
 *                                                  it in an autogroup of its own: BENCHMARKS.md)
 *   setChildSubreaper(on)         -> 0 or -errno   orphans of the workers' children come to the
 *                                                  master rather than to init (Linux only)
 *   reap(pid)                     -> null | { pid, code, signal }
 *                                                  waitpid(pid, WNOHANG) for one process the master
 *                                                  did not spawn (an orphan it adopted): never -1,
 *                                                  which would take libuv's own children from it
 *   setRemoteNoDelay(pid, fd)     -> 0 or -errno   TCP_NODELAY on socket fd of process pid (a worker's
 *                                                  inspector listener, whose accepted sockets inherit it
 *                                                  on Linux), through pidfd_getfd (Linux >= 5.6; needs
 *                                                  the right to ptrace it, which a parent has)
 *   notify(socketPath, message)   -> 0 or -errno   one datagram to a unix socket (systemd's
 *                                                  NOTIFY_SOCKET; '@' starts an abstract name):
 *                                                  Node has no unix datagram sockets
 *   stopListening(fd)             -> 0 or -errno   shutdown(SHUT_RD) of listening socket fd: on Linux
 *                                                  it stops listening for every process that holds a
 *                                                  copy (new connections are refused); Node has no
 *                                                  such call for a listening socket
 *   listenBacklog(fd)             -> backlog or -errno
 *                                                  the backlog listening TCP socket fd was given
 *                                                  (TCP_INFO, which reports it for a listener in
 *                                                  tcpi_sacked, Linux): a socket systemd passed is
 *                                                  listened on again with its own (Node's listen()
 *                                                  sets one anew, and has no call to read it)
 *   dup2(fd, target)              -> 0 or -errno   target becomes a copy of fd: the daemon master's own
 *                                                  stdout and stderr follow its log file to each new
 *                                                  file (a crash's stack is written by Node's C++ to
 *                                                  fd 2 itself); Node has no dup2
 */
#define NAPI_VERSION 8
#include <node_api.h>

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#if defined(__linux__)
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#endif

static int32_t int_arg(napi_env env, napi_callback_info info, size_t index, int32_t fallback) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t value = fallback;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || index >= argc) return fallback;
  if (napi_get_value_int32(env, argv[index], &value) != napi_ok) return fallback;
  return value;
}

static napi_value number(napi_env env, int32_t value) {
  napi_value result;
  napi_create_int32(env, value, &result);
  return result;
}

static napi_value js_setpgid(napi_env env, napi_callback_info info) {
  pid_t pid = (pid_t)int_arg(env, info, 0, 0);
  pid_t pgid = (pid_t)int_arg(env, info, 1, 0);
  return number(env, setpgid(pid, pgid) == 0 ? 0 : -errno);
}

static napi_value js_set_child_subreaper(napi_env env, napi_callback_info info) {
#if defined(__linux__) && defined(PR_SET_CHILD_SUBREAPER)
  int on = int_arg(env, info, 0, 1);
  return number(env, prctl(PR_SET_CHILD_SUBREAPER, on ? 1 : 0, 0, 0, 0) == 0 ? 0 : -errno);
#else
  (void)info;
  return number(env, -ENOSYS);
#endif
}

static napi_value js_reap(napi_env env, napi_callback_info info) {
  pid_t pid = (pid_t)int_arg(env, info, 0, 0);
  napi_value result;
  napi_get_null(env, &result);
  if (pid <= 0) return result;
  int status = 0;
  pid_t done;
  do {
    done = waitpid(pid, &status, WNOHANG);
  } while (done == -1 && errno == EINTR);
  if (done != pid) return result;
  napi_create_object(env, &result);
  napi_set_named_property(env, result, "pid", number(env, done));
  napi_set_named_property(env, result, "code", number(env, WIFEXITED(status) ? WEXITSTATUS(status) : -1));
  napi_set_named_property(env, result, "signal", number(env, WIFSIGNALED(status) ? WTERMSIG(status) : 0));
  return result;
}

static napi_value js_set_remote_nodelay(napi_env env, napi_callback_info info) {
#if defined(__linux__) && defined(SYS_pidfd_open) && defined(SYS_pidfd_getfd)
  pid_t pid = (pid_t)int_arg(env, info, 0, 0);
  int fd = int_arg(env, info, 1, -1);
  if (pid <= 0 || fd < 0) return number(env, -EINVAL);
  int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
  if (pidfd < 0) return number(env, -errno);
  int local = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
  int error = local < 0 ? errno : 0;
  close(pidfd);
  if (local < 0) return number(env, -error);
  int on = 1;
  int done = setsockopt(local, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
  error = done == 0 ? 0 : errno;
  close(local);
  return number(env, -error);
#else
  (void)info;
  return number(env, -ENOSYS);
#endif
}

static napi_value js_stop_listening(napi_env env, napi_callback_info info) {
#if defined(__linux__)
  int fd = int_arg(env, info, 0, -1);
  if (fd < 0) return number(env, -EINVAL);
  return number(env, shutdown(fd, SHUT_RD) == 0 ? 0 : -errno);
#else
  (void)info;
  return number(env, -ENOSYS);
#endif
}

static napi_value js_notify(napi_env env, napi_callback_info info) {
#if defined(__linux__)
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2) return number(env, -EINVAL);
  struct sockaddr_un address;
  memset(&address, 0, sizeof(address));
  address.sun_family = AF_UNIX;
  char path[sizeof(address.sun_path) + 1];
  size_t path_length = 0;
  if (napi_get_value_string_utf8(env, argv[0], path, sizeof(path), &path_length) != napi_ok) return number(env, -EINVAL);
  if (path_length == 0 || path_length >= sizeof(address.sun_path)) return number(env, -EINVAL);
  memcpy(address.sun_path, path, path_length);
  if (path[0] == '@') address.sun_path[0] = '\0';
  char message[4096];
  size_t message_length = 0;
  if (napi_get_value_string_utf8(env, argv[1], message, sizeof(message), &message_length) != napi_ok) return number(env, -EINVAL);
  if (message_length >= sizeof(message) - 1) return number(env, -EMSGSIZE);
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return number(env, -errno);
  socklen_t length = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + path_length);
  ssize_t sent;
  do {
    sent = sendto(fd, message, message_length, MSG_NOSIGNAL, (struct sockaddr *)&address, length);
  } while (sent < 0 && errno == EINTR);
  int error = sent < 0 ? errno : 0;
  close(fd);
  return number(env, -error);
#else
  (void)info;
  return number(env, -ENOSYS);
#endif
}

static napi_value js_listen_backlog(napi_env env, napi_callback_info info) {
#if defined(__linux__)
  int fd = int_arg(env, info, 0, -1);
  if (fd < 0) return number(env, -EINVAL);
  int listening = 0;
  socklen_t length = sizeof(listening);
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &length) != 0) return number(env, -errno);
  if (!listening) return number(env, -EINVAL);
  struct tcp_info tcp;
  memset(&tcp, 0, sizeof(tcp));
  length = sizeof(tcp);
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &tcp, &length) != 0) return number(env, -errno);
  /* A listener's tcp_info aliases two fields: tcpi_unacked is the queue now, tcpi_sacked its limit. */
  if (tcp.tcpi_state != TCP_LISTEN || tcp.tcpi_sacked == 0 || tcp.tcpi_sacked > INT32_MAX) return number(env, -EINVAL);
  return number(env, (int32_t)tcp.tcpi_sacked);
#else
  (void)info;
  return number(env, -ENOSYS);
#endif
}

static napi_value js_dup2(napi_env env, napi_callback_info info) {
  int fd = int_arg(env, info, 0, -1);
  int target = int_arg(env, info, 1, -1);
  if (fd < 0 || target < 0) return number(env, -EINVAL);
  int done;
  do {
    done = dup2(fd, target);
  } while (done == -1 && errno == EINTR);
  return number(env, done == -1 ? -errno : 0);
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor properties[] = {
      {"setpgid", NULL, js_setpgid, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setChildSubreaper", NULL, js_set_child_subreaper, NULL, NULL, NULL, napi_enumerable, NULL},
      {"reap", NULL, js_reap, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setRemoteNoDelay", NULL, js_set_remote_nodelay, NULL, NULL, NULL, napi_enumerable, NULL},
      {"notify", NULL, js_notify, NULL, NULL, NULL, napi_enumerable, NULL},
      {"stopListening", NULL, js_stop_listening, NULL, NULL, NULL, napi_enumerable, NULL},
      {"listenBacklog", NULL, js_listen_backlog, NULL, NULL, NULL, napi_enumerable, NULL},
      {"dup2", NULL, js_dup2, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof(properties) / sizeof(properties[0]), properties);
  return exports;
}

NAPI_MODULE(clusterd_native, init)
