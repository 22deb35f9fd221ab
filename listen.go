package main

import (
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/go-kit/log"
	"github.com/prometheus/exporter-toolkit/web"
)

// bind checks a listener's web config and binds its addresses, so that a
// port in use or a bad web config stops start-up before any polling,
// naming the flag. With systemd socket activation or a vsock address it
// binds nothing: serve leaves those to exporter-toolkit.
func bind(flags *web.FlagConfig, addrFlag, configFlag string) ([]net.Listener, error) {
	if f := *flags.WebConfigFile; f != "" {
		if err := web.Validate(f); err != nil {
			return nil, fmt.Errorf("%s %s: %w", configFlag, f, err)
		}
	}
	if flags.WebSystemdSocket != nil && *flags.WebSystemdSocket {
		return nil, nil
	}
	var listeners []net.Listener
	for _, addr := range *flags.WebListenAddresses {
		if strings.HasPrefix(addr, "vsock://") {
			for _, l := range listeners {
				l.Close()
			}
			return nil, nil
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			for _, l := range listeners {
				l.Close()
			}
			return nil, fmt.Errorf("%s %s: %w", addrFlag, addr, err)
		}
		listeners = append(listeners, l)
	}
	return listeners, nil
}

// serve serves srv on the listeners bind returned, or lets
// exporter-toolkit bind them when bind left that to it.
func serve(listeners []net.Listener, srv *http.Server, flags *web.FlagConfig, logger log.Logger) error {
	if listeners == nil {
		return web.ListenAndServe(srv, flags, slogFor(logger))
	}
	return web.ServeMultiple(listeners, srv, flags, slogFor(logger))
}
