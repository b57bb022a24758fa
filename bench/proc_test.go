package bench

import (
	"os"
	"testing"
	"time"
)

func TestParseRollup(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    rollup
		wantErr bool
	}{
		{
			name: "kernel 6.x",
			in: `55d0c1a4e000-7ffd4a3f9000 ---p 00000000 00:00 0                          [rollup]
Rss:               23456 kB
Pss:               12345 kB
Pss_Dirty:          9000 kB
Pss_Anon:           8000 kB
Pss_File:           4000 kB
Pss_Shmem:           345 kB
Shared_Clean:       1000 kB
Private_Dirty:      9000 kB
Swap:                  0 kB
SwapPss:               0 kB
`,
			want: rollup{RSS: 23456 << 10, PSS: 12345 << 10},
		},
		{name: "no Pss", in: "Rss: 1 kB\nPss_Anon: 1 kB\n", wantErr: true},
		{name: "empty", in: "", wantErr: true},
		{name: "garbage number", in: "Rss: x kB\nPss: 1 kB\n", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseRollup([]byte(tc.in))
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("parseRollup = %+v, %v; want %+v, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestReadRollupSelf(t *testing.T) {
	m, err := readRollup(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if m.RSS < 1<<20 || m.PSS == 0 || m.PSS > m.RSS {
		t.Errorf("this test process: %+v", m)
	}
	if _, err := readRollup(1 << 30); err == nil {
		t.Error("no error for a pid that cannot exist")
	}
}

func TestParseCPUTime(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    time.Duration
		wantErr bool
	}{
		// user nice system idle iowait irq softirq steal guest guest_nice:
		// busy = 100+2+50+3+4+1 = 160 ticks of 10ms.
		{"busy fields", "cpu  100 2 50 9999 77 3 4 1 20 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n", 1600 * time.Millisecond, false},
		{"not the cpu line", "cpu0 1 2 3 4 5 6 7 8\n", 0, true},
		{"too short", "cpu 1 2 3\n", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseCPUTime([]byte(tc.in))
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("parseCPUTime = %v, %v; want %v, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
	if d, err := readCPUTime(); err != nil || d <= 0 {
		t.Errorf("readCPUTime = %v, %v", d, err)
	}
}
