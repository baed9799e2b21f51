package simwire

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/payhook/payhook/pkg/events"
)

func TestOrderedKeepsKeyOrder(t *testing.T) {
	b, err := Ordered([]KV{{"z", 1}, {"a", nil}, {"m", json.RawMessage(`20000.00`)}, {"s", "x\"y"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"z":1,"a":null,"m":20000.00,"s":"x\"y"}`; string(b) != want {
		t.Fatalf("got %s, want %s", b, want)
	}
	if _, err := Ordered([]KV{{"f", func() {}}}); err == nil {
		t.Fatal("an unmarshalable value was written")
	}
	if got := string(MustOrdered([]KV{{"f", func() {}}})); got != "{}" {
		t.Fatalf("MustOrdered of an unmarshalable value: %s", got)
	}
}

func TestCorruptHexChangesTheSignature(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", "0"}, {"0abc", "1abc"}, {"a0", "90"}, {"F0", "E0"}, {"A1", "91"}, {"9f", "0f"},
	} {
		if got := CorruptHex(c.in); got != c.want || got == c.in {
			t.Errorf("CorruptHex(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestFixedAndMinor(t *testing.T) {
	m := events.MustMoney("5.5", "INR")
	if got := Fixed(m, 2); got != "5.50" {
		t.Errorf("Fixed = %s", got)
	}
	if got := Fixed(events.MustMoney("0.05", "INR"), 2); got != "0.05" {
		t.Errorf("Fixed of a small amount = %s", got)
	}
	if got := Fixed(events.MustMoney("20000", "IDR"), 0); got != "20000" {
		t.Errorf("Fixed with no fraction = %s", got)
	}
	if got := Minor(m, 2); got != "550" {
		t.Errorf("Minor = %s", got)
	}
	if got := Minor(events.MustMoney("1.234", "INR"), 2); got != "0" {
		t.Errorf("Minor of an amount finer than the wire = %s, want 0", got)
	}
}

func TestChecks(t *testing.T) {
	if !ValidMD5("0123456789abcdef0123456789ABCDEF") || ValidMD5("0123") || ValidMD5("zz23456789abcdef0123456789abcdef") {
		t.Error("ValidMD5")
	}
	if !EqualFold("ABCdef", "abcDEF") || EqualFold("abc", "abd") {
		t.Error("EqualFold")
	}
	if !IsDigits("0123") || IsDigits("") || IsDigits("12a") {
		t.Error("IsDigits")
	}
	if m, ok := DecodeFlat([]byte(`{"n":1.50}`)); !ok || m["n"] != json.Number("1.50") {
		t.Errorf("DecodeFlat: %v %v", m, ok)
	}
	if _, ok := DecodeFlat([]byte(`[1]`)); ok {
		t.Error("DecodeFlat took an array")
	}
}

func TestDecimal(t *testing.T) {
	for _, c := range []struct {
		digits string
		places int
		want   string
	}{{"12345", 2, "123.45"}, {"5", 2, "0.05"}, {"50", 2, "0.50"}, {"100", 0, "100"}, {"7", 3, "0.007"}} {
		if got := Decimal(c.digits, c.places); got != c.want {
			t.Errorf("Decimal(%q, %d) = %q, want %q", c.digits, c.places, got, c.want)
		}
	}
}

func TestWrongMethod(t *testing.T) {
	w := httptest.NewRecorder()
	if !WrongMethod(w, httptest.NewRequest(http.MethodGet, "/", nil), http.MethodPost) {
		t.Fatal("GET passed for POST")
	}
	if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != http.MethodPost {
		t.Errorf("got %d, Allow %q", w.Code, w.Header().Get("Allow"))
	}
	if WrongMethod(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/", nil), http.MethodPost) {
		t.Error("POST refused for POST")
	}
}
