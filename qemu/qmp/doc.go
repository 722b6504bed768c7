// Package qmp is a small client for the QEMU Machine Protocol over a unix
// socket: it reads the greeting, negotiates capabilities, runs commands
// (each tagged with an id so replies and events never get mixed up) and
// delivers asynchronous events on a channel.
//
//	c, err := qmp.Dial(ctx, "build/shelf/default/slot3.qmp")
//	if err != nil { ... }
//	defer c.Close()
//	var st qmp.Status
//	err = c.Execute(ctx, "query-status", nil, &st)
//	err = c.Execute(ctx, "set_link", map[string]any{"name": "base0", "up": false}, nil)
//	for ev := range c.Events() { ... }
package qmp
