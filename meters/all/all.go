// Package all registers every meter driver and emulator of the harness.
// Import it for its side effects.
package all

import (
	// One line per driver package; each registers itself from init.
	_ "github.com/academemes/harness/meters/agent"
	_ "github.com/academemes/harness/meters/estimate"
	_ "github.com/academemes/harness/meters/modbus"
	_ "github.com/academemes/harness/meters/openmetrics"
	_ "github.com/academemes/harness/meters/prometheus"
	_ "github.com/academemes/harness/meters/rapl"
	_ "github.com/academemes/harness/meters/serial/pmdusb"
	_ "github.com/academemes/harness/meters/serial/powersensor3"
)
