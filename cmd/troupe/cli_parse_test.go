package main

import (
	"testing"

	"github.com/troupe-run/troupe/runtime"
)

func TestParseSignal(t *testing.T) {
	tests := []struct {
		in      string
		want    int
		wantErr bool
	}{
		{"9", 9, false},
		{"0", 0, false},
		{"64", 64, false},
		{"TERM", 15, false},
		{"SIGTERM", 15, false},
		{"kill", 9, false},
		{"sigHup", 1, false},
		{"INT", 2, false},
		{"USR1", 10, false},
		{"65", 0, true},
		{"-1", 0, true},
		{"FOO", 0, true},
		{"SIG", 0, true},
		{"", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseSignal(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseSignal(%q) error %v, want error %v", tt.in, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("parseSignal(%q) = %d, want %d", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"1048576", 1 << 20, false},
		{"64m", 64 << 20, false},
		{"64M", 64 << 20, false},
		{"64MiB", 64 << 20, false},
		{"64mb", 64 << 20, false},
		{"512k", 512 << 10, false},
		{"1.5g", 3 << 29, false},
		{"2 GiB", 2 << 30, false},
		{"1t", 1 << 40, false},
		{"100b", 100, false},
		{"-1", -1, false},
		{" 64m ", 64 << 20, false},
		{"", 0, true},
		{"m", 0, true},
		{"-2", 0, true},
		{"64x", 0, true},
		{"1.2.3m", 0, true},
		{"10000000t", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseSize(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseSize(%q) error %v, want error %v", tt.in, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("parseSize(%q) = %d, want %d", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseUser(t *testing.T) {
	tests := []struct {
		in      string
		want    runtime.User
		wantErr bool
	}{
		{"0", runtime.User{}, false},
		{"1000", runtime.User{UID: 1000}, false},
		{"1000:100", runtime.User{UID: 1000, GID: 100}, false},
		{"redis", runtime.User{}, true},
		{"1000:", runtime.User{}, true},
		{":100", runtime.User{}, true},
		{"-1", runtime.User{}, true},
		{"1:2:3", runtime.User{}, true},
		{"4294967296", runtime.User{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseUser(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseUser(%q) error %v, want error %v", tt.in, err, tt.wantErr)
			}
			if got.UID != tt.want.UID || got.GID != tt.want.GID {
				t.Errorf("parseUser(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestCheckEnv(t *testing.T) {
	tests := []struct {
		env     []string
		wantErr bool
	}{
		{nil, false},
		{[]string{"A=b", "EMPTY=", "X=a=b"}, false},
		{[]string{"A"}, true},
		{[]string{"=b"}, true},
	}
	for _, tt := range tests {
		if err := checkEnv(tt.env); (err != nil) != tt.wantErr {
			t.Errorf("checkEnv(%q) error %v, want error %v", tt.env, err, tt.wantErr)
		}
	}
}
