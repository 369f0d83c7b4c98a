package meters

import (
	"math"
	"testing"
)

func TestParseWatts(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Watts
		wantErr bool
	}{
		{"watts", "1.5W", 1.5, false},
		{"lower w", "2w", 2, false},
		{"bare number", "3.25", 3.25, false},
		{"milliwatts", "800mW", 0.8, false},
		{"microwatts", "250uW", 250e-6, false},
		{"micro sign", "250µW", 250e-6, false},
		{"kilowatts", "0.2kW", 200, false},
		{"spaces", " 7 W ", 7, false},
		{"megawatts refused", "1MW", 0, true},
		{"no number", "W", 0, true},
		{"garbage", "abc", 0, true},
		{"empty", "", 0, true},
		{"not a number", "NaN", 0, true},
		{"not a number in watts", "nanW", 0, true},
		{"infinite", "Inf", 0, true},
		{"minus infinity", "-infW", 0, true},
		{"infinity in kW", "infinitykW", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseWatts(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseWatts(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			}
			if !tt.wantErr && math.Abs(float64(got-tt.want)) > 1e-12 {
				t.Errorf("ParseWatts(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestWattsString(t *testing.T) {
	if got := Watts(1.5).String(); got != "1.5 W" {
		t.Errorf("Watts(1.5).String() = %q", got)
	}
}
