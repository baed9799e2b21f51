package md5sign_test

import (
	"testing"

	"github.com/payhook/payhook/pkg/providers/internal/md5sign"
)

func TestDigest(t *testing.T) {
	tests := []struct {
		name, in, lower string
	}{
		{"empty", "", "d41d8cd98f00b204e9800998ecf8427e"},
		{"rfc1321 abc", "abc", "900150983cd24fb0d6963f7d28e17f72"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := md5sign.Lower(tt.in); got != tt.lower {
				t.Errorf("Lower = %s", got)
			}
			if got, want := md5sign.Upper(tt.in), "900150983CD24FB0D6963F7D28E17F72"; tt.in == "abc" && got != want {
				t.Errorf("Upper = %s", got)
			}
		})
	}
}

func TestSortedString(t *testing.T) {
	tests := []struct {
		name   string
		fields map[string]string
		want   string
	}{
		{"none", nil, "key=K"},
		{"byte order, upper case first", map[string]string{"b": "2", "a": "1", "B": "3", "a_b": ""}, "B=3&a=1&a_b=&b=2&key=K"},
		{"values as given", map[string]string{"x": "a&b=c"}, "x=a&b=c&key=K"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := md5sign.SortedString(tt.fields, "K"); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestEqual(t *testing.T) {
	tests := []struct {
		name string
		a, b string
		want bool
	}{
		{"same", "ABC", "ABC", true},
		{"case differs", "ABC", "abc", false},
		{"prefix", "AB", "ABC", false},
		{"both empty", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := md5sign.Equal(tt.a, tt.b); got != tt.want {
				t.Errorf("Equal = %v", got)
			}
		})
	}
}
