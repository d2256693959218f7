"""Synthetic cameras for calibration and rectification tests: a chessboard rendered through a known camera."""
from __future__ import annotations

import cv2
import numpy as np

SIZE = (640, 480)
K_LEFT = np.array([[520.0, 0.0, 322.0], [0.0, 518.0, 243.0], [0.0, 0.0, 1.0]])
K_RIGHT = np.array([[525.0, 0.0, 317.0], [0.0, 523.0, 238.0], [0.0, 0.0, 1.0]])
D_LEFT = np.array([-0.12, 0.05, 0.0005, -0.0003, 0.0])
D_RIGHT = np.array([-0.10, 0.04, -0.0004, 0.0002, 0.0])
R_LR = cv2.Rodrigues(np.array([0.01, -0.02, 0.005]))[0]  # left -> right camera rotation
T_LR = np.array([-0.12, 0.002, 0.001])  # metres: the right camera 12 cm to the right


def distorted_to_ideal_map(K, D, size, margin: int):
    """For every pixel of the distorted image, where it lies in an ideal pinhole image (K shifted by margin)."""
    w, h = size
    grid = np.stack(np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)), -1).reshape(-1, 1, 2)
    Kc = K.copy()
    Kc[0, 2] += margin
    Kc[1, 2] += margin
    ideal = cv2.undistortPoints(grid, K, D, P=Kc).reshape(h, w, 2)
    return ideal[..., 0].copy(), ideal[..., 1].copy(), Kc


def board_texture(pattern=(9, 6), px_per_square: int = 40, margin_squares: float = 1.0):
    """White-bordered chessboard image; returns (image, metres->texture-pixel affine for square=1)."""
    cols, rows = pattern[0] + 1, pattern[1] + 1
    m = int(margin_squares * px_per_square)
    img = np.full((rows * px_per_square + 2 * m, cols * px_per_square + 2 * m), 230, np.uint8)
    for j in range(rows):
        for i in range(cols):
            if (i + j) % 2 == 0:
                img[m + j * px_per_square: m + (j + 1) * px_per_square, m + i * px_per_square: m + (i + 1) * px_per_square] = 25
    # board unit (squares) -> texture px; inner corner (0,0) sits one square in from the board edge
    A = np.array([[px_per_square, 0.0, m + px_per_square], [0.0, px_per_square, m + px_per_square], [0.0, 0.0, 1.0]])
    return img, A


class ChessboardRenderer:
    """Renders a 9x6 chessboard (square `square` m) at given poses through a distorted stereo pair."""

    def __init__(self, square: float = 0.03, pattern=(9, 6), margin: int = 200):
        self.square = square
        self.pattern = pattern
        self.margin = margin
        self.texture, self.A = board_texture(pattern)
        self.maps = {
            "left": distorted_to_ideal_map(K_LEFT, D_LEFT, SIZE, margin),
            "right": distorted_to_ideal_map(K_RIGHT, D_RIGHT, SIZE, margin),
        }

    def _render(self, side: str, R_board: np.ndarray, t_board: np.ndarray, rng) -> np.ndarray:
        mx, my, Kc = self.maps[side]
        # board plane (units of squares) -> ideal image: Kc [r1 r2 t] diag(square, square, 1)
        H = Kc @ np.column_stack([R_board[:, 0] * self.square, R_board[:, 1] * self.square, t_board])
        H_tex_to_img = H @ np.linalg.inv(self.A)
        w, h = SIZE
        canvas = (w + 2 * self.margin, h + 2 * self.margin)
        ideal = cv2.warpPerspective(self.texture, H_tex_to_img, canvas, flags=cv2.INTER_AREA, borderValue=128)
        img = cv2.remap(ideal, mx, my, cv2.INTER_LINEAR, borderValue=128)
        img = cv2.GaussianBlur(img, (0, 0), 0.7)
        noise = rng.normal(0, 1.5, img.shape)
        return np.clip(img.astype(np.float64) + noise, 0, 255).astype(np.uint8)

    def pair(self, rvec, tvec, rng) -> tuple[np.ndarray, np.ndarray]:
        """Left and right images of the board at pose (rvec, tvec) in the LEFT camera frame."""
        Rb = cv2.Rodrigues(np.asarray(rvec, dtype=np.float64))[0]
        tb = np.asarray(tvec, dtype=np.float64)
        left = self._render("left", Rb, tb, rng)
        right = self._render("right", R_LR @ Rb, R_LR @ tb + T_LR, rng)
        return left, right


def board_poses(n: int = 12, seed: int = 0, square: float = 0.03, pattern=(9, 6)):
    """Varied board poses fully seen by both cameras (with a 15 px margin), spread over the image, 0.3-0.6 m."""
    rng = np.random.default_rng(seed)
    cols, rows = pattern
    # the board's outer corners (one square beyond the inner corners), board frame, metres
    outline = np.array([[-1, -1, 0], [cols, -1, 0], [cols, rows, 0], [-1, rows, 0]], np.float64) * square
    poses = []
    while len(poses) < n:
        rvec = np.array([rng.uniform(-0.6, 0.6), rng.uniform(-0.6, 0.6), rng.uniform(-0.3, 0.3)])
        Rb = cv2.Rodrigues(rvec)[0]
        centre = np.array([rng.uniform(-0.2, 0.1), rng.uniform(-0.12, 0.12), rng.uniform(0.3, 0.6)])
        tvec = centre - Rb @ np.array([(cols - 1) / 2 * square, (rows - 1) / 2 * square, 0.0])
        ok = True
        for R, t, K, D in ((np.eye(3), np.zeros(3), K_LEFT, D_LEFT), (R_LR, T_LR, K_RIGHT, D_RIGHT)):
            pts, _ = cv2.projectPoints(outline, cv2.Rodrigues(R @ Rb)[0], R @ tvec + t, K, D)
            pts = pts.reshape(-1, 2)
            ok &= bool(np.all((pts > 15) & (pts < np.array(SIZE) - 15)))
        if ok:
            poses.append((rvec, tvec))
    return poses
