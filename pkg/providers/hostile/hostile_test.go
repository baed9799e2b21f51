package hostile_test

import (
	"net/http"
	"testing"

	"github.com/payhook/payhook/pkg/providers/hostile"
)

func TestObjKeepsTheBytesMutationsAskFor(t *testing.T) {
	o := (&hostile.Obj{}).Set("b", `"x"`).Set("a", "1").Set("b", "null").Add("a", "2")
	for _, c := range []struct{ name, got, want string }{
		{"set replaces, add repeats", string(o.Bytes()), `{"b":null,"a":1,"a":2}`},
		{"render spaces", string((&hostile.Obj{}).Set("k", "1").Set("j", "2").Render(" ")), `{"k": 1, "j": 2}`},
		{"reversed sorts keys descending", string((&hostile.Obj{}).Set("a", "1").Set("c", "3").Set("b", "2").Reversed().Bytes()), `{"c":3,"b":2,"a":1}`},
		{"del", string(o.Clone().Del("b").Bytes()), `{"a":1,"a":2}`},
		{"str does not escape HTML", hostile.Str("<&>"), `"<&>"`},
		{"as form unquotes strings", string((&hostile.Obj{}).Set("s", `"a b"`).Set("n", "1").AsForm().Render()), "s=a+b&n=1"},
		{"form set, del, render", string(hostile.Form{{K: "x", V: "1"}, {K: "y", V: "&"}}.Set("x", "2").Del("z").Render()), "x=2&y=%26"},
		{"cents", hostile.Cents(5) + " " + hostile.Cents(12345), "0.05 123.45"},
	} {
		if c.got != c.want {
			t.Errorf("%s: got %s, want %s", c.name, c.got, c.want)
		}
	}
}

func TestCloneSharesNothing(t *testing.T) {
	c := &hostile.Callback{Obj: (&hostile.Obj{}).Set("a", "1"), Form: hostile.Form{{K: "f", V: "1"}},
		Header: http.Header{"X": {"1"}}, Body: []byte("body")}
	d := c.Clone()
	d.Obj.Set("a", "2")
	d.Form.Set("f", "2")
	d.Header.Set("X", "2")
	d.Body[0] = 'B'
	if string(c.Obj.Bytes()) != `{"a":1}` || c.Form.Get("f") != "1" || c.Header.Get("X") != "1" || string(c.Body) != "body" {
		t.Errorf("changing a clone changed the original: %s %v %v %s", c.Obj.Bytes(), c.Form, c.Header, c.Body)
	}
}

func TestParseObjKeepsOrderAndRawValues(t *testing.T) {
	raw := `{"b":1,"a":{"x":[1,2]},"c":"s","a":null}`
	o, err := hostile.ParseObj(raw)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(o.Bytes()); got != raw {
		t.Errorf("ParseObj(%s).Bytes() = %s", raw, got)
	}
	for _, bad := range []string{"[]", "", `{"a":}`, `{"a":1`} {
		if _, err := hostile.ParseObj(bad); err == nil {
			t.Errorf("ParseObj(%q) succeeded", bad)
		}
	}
}
