import numpy as np
import pytest

from labeling import LabelMatrixError, check_label_matrix, label_matrix_hash


def test_hash_depends_on_values_and_shape():
    L = np.array([[0, -1], [1, 1]])
    assert label_matrix_hash(L) == label_matrix_hash(L.astype(np.int32).copy())
    assert label_matrix_hash(L) != label_matrix_hash(L.T)
    assert label_matrix_hash(L) != label_matrix_hash(L.reshape(1, 4))
    L2 = L.copy()
    L2[0, 1] = 0
    assert label_matrix_hash(L) != label_matrix_hash(L2)


@pytest.mark.parametrize(
    "L, k, message",
    [
        (np.array([0, 1]), None, "2-D"),
        (np.array([[0, -2]]), None, r"L\[0, 1\] = -2"),
        (np.array([[0, 2]]), 2, r"L\[0, 1\] = 2.*cardinality 2"),
        (np.array([[0.5, 1.0]]), None, "integer"),
    ],
)
def test_bad_matrices_name_the_cell(L, k, message):
    with pytest.raises(LabelMatrixError, match=message):
        check_label_matrix(L, k)
