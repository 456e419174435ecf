package main

import (
	"math/rand/v2"
	"strings"
)

// corpus makes the texts of the bench: words drawn from a vocabulary of vocabSize
// made-up words with Zipf-like frequencies (a few words are in most texts, most words
// are rare), 5 to 40 words a text, so the word indexes have the sizes of real text
// rather than one small set per record.
type corpus struct {
	vocab []string
	zipf  *rand.Zipf
	r     *rand.Rand
}

const (
	vocabSize = 3000
	minWords  = 5
	maxWords  = 40
	zipfS     = 1.07 // the exponent of English word frequencies, roughly
)

// vocabulary is vocabSize distinct lower-case words of 2 to 10 letters, the same in
// every run.
func vocabulary() []string {
	syll := strings.Fields("ka lo mi ne ru sa te vi do fa go hu ji ke la ma no pe qui ro su ta ve wo xa yo zu an el in or us")
	r := rand.New(rand.NewPCG(7, 7))
	seen := map[string]bool{}
	out := make([]string, 0, vocabSize)
	for len(out) < vocabSize {
		var b strings.Builder
		for n := 1 + r.IntN(4); n > 0; n-- {
			b.WriteString(syll[r.IntN(len(syll))])
		}
		if w := b.String(); !seen[w] {
			seen[w] = true
			out = append(out, w)
		}
	}
	return out
}

var vocab = vocabulary()

func newCorpus(seed1, seed2 uint64) *corpus {
	r := rand.New(rand.NewPCG(seed1, seed2))
	return &corpus{vocab: vocab, r: r, zipf: rand.NewZipf(r, zipfS, 1, uint64(len(vocab)-1))}
}

// text returns one text of minWords..maxWords words.
func (c *corpus) text() string {
	n := minWords + c.r.IntN(maxWords-minWords+1)
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(c.vocab[c.zipf.Uint64()])
	}
	return b.String()
}

var recordTypes = []string{"bp", "cmt", "rvw"}
