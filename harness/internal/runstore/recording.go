package runstore

import (
	"path/filepath"
	"strings"
	"time"
)

// Recording is the sidecar of a standalone samples file, written by
// `harness meters record --out FILE.csv` as FILE.meta.json (see
// RecordingPath). The samples file keeps samples.csv's columns exactly,
// the contract that pandas, R and Load rely on; the sidecar says what a
// run.json says of a run's meter: what each channel index measures and
// whether it counts toward the total, whether the meter measures or
// models, its precision, and what went wrong while recording (gaps).
// A name column instead would repeat one string on every row and still
// leave the rest unsaid.
type Recording struct {
	Format int `json:"format"` // as run.json's (see Format)
	// Samples is the samples file's name, in the same directory.
	Samples string    `json:"samples"`
	Started time.Time `json:"started"`
	// Ended is zero while recording (or when the recording was killed).
	Ended time.Time `json:"ended,omitzero"`
	Meter MeterMeta `json:"meter"`
}

// RecordingPath is where the sidecar of the samples file at samples goes:
// FILE.csv's is FILE.meta.json.
func RecordingPath(samples string) string {
	return strings.TrimSuffix(samples, filepath.Ext(samples)) + ".meta.json"
}
