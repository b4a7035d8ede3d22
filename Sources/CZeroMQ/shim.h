// libzmq for Swift. Debian: apt-get install -y libzmq3-dev.
#ifndef DISTILL_CZEROMQ_SHIM_H
#define DISTILL_CZEROMQ_SHIM_H
#include <zmq.h>
#endif
