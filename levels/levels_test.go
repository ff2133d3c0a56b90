package levels

import (
	"strings"
	"testing"
)

func TestValuesMatchMars(t *testing.T) {
	if GPU != 1 || Memory != 2 || Disk != 4 || Remote != 8 {
		t.Fatalf("values changed: gpu=%d memory=%d disk=%d remote=%d", GPU, Memory, Disk, Remote)
	}
}

func TestParse(t *testing.T) {
	cases := []struct {
		in   string
		want Level
	}{
		{"memory", Memory},
		{"memory,disk", Memory | Disk},
		{" GPU , remote", GPU | Remote},
		{"disk,memory", Memory | Disk},
	}
	for _, c := range cases {
		got, err := Parse(c.in)
		if err != nil || got != c.want {
			t.Errorf("Parse(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
}

func TestParseListKeepsOrder(t *testing.T) {
	got, err := ParseList("disk,gpu")
	if err != nil || len(got) != 2 || got[0] != Disk || got[1] != GPU {
		t.Fatalf("ParseList = %v, %v", got, err)
	}
}

func TestParseRejects(t *testing.T) {
	for _, in := range []string{"", "memory,", "tape", "memory,memory", "disk,DISK"} {
		_, err := Parse(in)
		if err == nil {
			t.Errorf("Parse(%q) accepted", in)
			continue
		}
		if !strings.Contains(err.Error(), "gpu, memory, disk, remote") {
			t.Errorf("Parse(%q) error does not list known names: %v", in, err)
		}
	}
}

func TestStringAndOrder(t *testing.T) {
	if s := (Remote | GPU | Disk).String(); s != "gpu,disk,remote" {
		t.Errorf("String = %q", s)
	}
	if s := None.String(); s != "none" {
		t.Errorf("None.String = %q", s)
	}
	if s := Level(0x30 | 2).String(); s != "memory,0x30" {
		t.Errorf("unknown bits String = %q", s)
	}
	if !Memory.Faster(Disk) || Disk.Faster(Memory) || (Disk|GPU).Fastest() != GPU {
		t.Error("order is not fastest first")
	}
	if !(Memory | Disk).Contains(Disk) || Memory.Contains(Disk) {
		t.Error("Contains")
	}
	if !Disk.IsSingle() || (Disk | Memory).IsSingle() || None.IsSingle() {
		t.Error("IsSingle")
	}
	for i, l := range All[1:] {
		if !All[i].Faster(l) {
			t.Errorf("All is not fastest first at %d", i)
		}
	}
}
