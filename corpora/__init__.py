"""Reading the corpora: CoNLL layers, event arguments and configs/corpora.yaml. Shared by train/, eval/ and bench/,
owned by none of them (data flows corpora -> features -> model -> checkpoint -> Tagger / eval)."""
