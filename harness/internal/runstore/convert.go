package runstore

// The conversions from the driver-facing types of packages meters and
// targets to the run directory's own are here, field by field, and
// nowhere else. run.json is a file that `harness report` reads back long
// after it was written, while meters.Info and targets.Info are Go APIs
// that change with the drivers: a field renamed or retyped there breaks
// the build here instead of silently renaming a key of run.json. This is
// the only file of the package that imports meters and targets. It is in
// runstore rather than in the runner because the runner, `harness meters
// record` (its sidecar file) and the synthetic runs all convert the same
// way.

import (
	"maps"
	"slices"

	"github.com/academemes/harness/meters"
	"github.com/academemes/harness/targets"
)

// TargetMetaFrom is the run.json record of a target described by info.
func TargetMetaFrom(info targets.Info) TargetMeta {
	return TargetMeta{Name: info.Name, Kind: info.Kind, Mode: string(info.Mode), Function: info.Function,
		Variant: info.Variant, Language: info.Language}
}

// MeterMetaFrom is the run.json record of a meter described by info,
// labelled as meters labels it for people.
func MeterMetaFrom(info meters.Info) MeterMeta {
	m := MeterMeta{
		Name:        info.Name,
		Driver:      info.Driver,
		Kind:        meterKindFrom(info.Kind),
		Description: info.Description,
		Label:       info.Label(),
		Host:        info.Host,
		Precision: Precision{
			PowerStepW:  info.Precision.PowerStepW,
			EnergyStepJ: info.Precision.EnergyStepJ,
			RelError:    info.Precision.RelError,
			Source:      info.Precision.Source,
		},
	}
	for _, c := range info.Channels {
		m.Channels = append(m.Channels, Channel{Name: c.Name, InTotal: c.InTotal, FullScaleW: c.FullScaleW})
	}
	return m
}

// meterKindFrom maps the meters package's kinds onto run.json's by
// meaning, not by spelling, so that renaming a constant's value there
// cannot change what old and new runs say. A kind this package does not
// know yet is kept as spelled.
func meterKindFrom(k meters.Kind) MeterKind {
	switch k {
	case meters.Measured:
		return MeterMeasured
	case meters.Model:
		return MeterModel
	}
	return MeterKind(k)
}

// MeterReportFrom is the run.json record of a meter's report.
func MeterReportFrom(rep meters.Report) *MeterReport {
	r := &MeterReport{
		Counters: maps.Clone(rep.Counters),
		Warnings: slices.Clone(rep.Warnings),
		Details:  maps.Clone(rep.Details),
	}
	for _, g := range rep.Gaps {
		r.Gaps = append(r.Gaps, Gap{Start: g.Start, End: g.End, Reason: g.Reason})
	}
	if f := rep.ClockFit; f != nil {
		r.ClockFit = &ClockFit{
			OffsetNs:      f.OffsetNs,
			DriftPPM:      f.DriftPPM,
			ResidualRMSNs: f.ResidualRMSNs,
			ResidualMaxNs: f.ResidualMaxNs,
			Points:        f.Points,
			AtNs:          f.AtNs,
			BoundNs:       f.BoundNs,
			DriftBoundPPM: f.DriftBoundPPM,
		}
	}
	return r
}

// SampleFrom is the samples.csv row of a sample of the meter named meter.
func SampleFrom(meter string, s meters.Sample) Sample {
	return Sample{Meter: meter, Channel: s.Channel, TNs: s.T.UnixNano(), Watts: s.Watts, Joules: s.Joules}
}
