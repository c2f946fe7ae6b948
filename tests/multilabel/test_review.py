"""The per-class label-error check on a small frame with one planted error."""

import numpy as np

from labeling.multilabel.review import multilabel_label_errors


def test_a_row_missing_a_class_it_clearly_has_is_flagged_for_that_class():
    texts, Y = [], []
    for i in range(60):
        sport, music = i % 2 == 0, i % 3 == 0
        texts.append(" ".join(["goal match" if sport else "", "song guitar" if music else "", f"w{i}"]))
        Y.append([int(sport), int(music)])
    Y = np.array(Y)
    Y[6, 1] = 0  # row 6 sings ("song guitar") but its gold set lost music
    errors = multilabel_label_errors(texts, Y, ["sport", "music"], family="word")
    first = errors.iloc[0]
    assert (first["row"], first["class"], first["given"], first["suggested"]) == (6, "music", 0, 1)
