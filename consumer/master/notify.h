#ifndef JQ_NOTIFY_H
#define JQ_NOTIFY_H

/* Tells the service manager how the master is doing, for systemd's
 * Type=notify (sd_notify(3)'s protocol, spoken without libsystemd):
 * READY=1 once every worker is serving, RELOADING=1 while a SIGHUP rolling
 * restart runs (READY=1 again when it ends), STOPPING=1 when a drain
 * begins. Each call also sends a STATUS= line that `systemctl status`
 * shows.
 *
 * Without NOTIFY_SOCKET in the environment (not started by systemd, or
 * another Type) every call does nothing. A failed send is logged as a
 * warning and otherwise ignored: the service runs on either way. The
 * status strings are copied; the caller keeps them. */

void jq_notify_ready(const char *status);
void jq_notify_reloading(const char *status);
void jq_notify_stopping(const char *status);

#endif
